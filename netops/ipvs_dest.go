package netops

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/moby/ipvs"
)

// Forwarding methods in the kernel's IP_VS_CONN_F_* values.
var forwardToKernel = map[Forward]uint32{
	ForwardDR:     ipvs.ConnectionFlagDirectRoute, // 3
	ForwardTunnel: ipvs.ConnectionFlagTunnel,      // 2
	ForwardNAT:    ipvs.ConnectionFlagMasq,        // 0
}

// forwardOther is the Forward reported for a kernel forwarding method ravel never programs
// (IP_VS_CONN_F_LOCALNODE 1, IP_VS_CONN_F_BYPASS 4): forwardOther|method, printed
// "forward-129" and so on.
const forwardOther Forward = 0x80

func toIPVSDest(d Destination) *ipvs.Destination {
	return &ipvs.Destination{
		// Not sent by moby (it has no IPVS_DEST_ATTR_ADDR_FAMILY in fillDestination): the
		// kernel uses the service's family. Set for clarity only.
		AddressFamily:   ipvsAF(d.Addr),
		Address:         net.IP(d.Addr.AsSlice()),
		Port:            d.Port,
		Weight:          d.Weight,
		ConnectionFlags: forwardToKernel[d.Forward],
		UpperThreshold:  d.Upper,
		LowerThreshold:  d.Lower,
	}
}

func fromIPVSDest(d *ipvs.Destination) (Destination, error) {
	// moby returns the first 4 bytes of the 16-byte address attribute for AF_INET (the family
	// attribute exists since Linux 3.18; before, moby guesses it from the bytes).
	a, ok := netip.AddrFromSlice(d.Address)
	if !ok {
		return Destination{}, fmt.Errorf("bad destination address %v", d.Address)
	}
	// The kernel already masks the forwarding method with IP_VS_CONN_F_FWD_MASK when it
	// reports it; mask again so that no other connection flag can leak in.
	method := d.ConnectionFlags & ipvs.ConnectionFlagFwdMask
	fwd := forwardOther | Forward(method)
	for f, m := range forwardToKernel {
		if m == method {
			fwd = f
		}
	}
	return Destination{
		DestKey: DestKey{Addr: a, Port: d.Port},
		Weight:  d.Weight,
		Forward: fwd,
		Upper:   d.UpperThreshold,
		Lower:   d.LowerThreshold,
	}, nil
}
