package netops

import (
	"errors"
	"net/netip"

	"github.com/ravel-lb/ravel/family"
)

// Neighbours makes the link learn the VIPs bound on this node in each family's protocol:
// gratuitous ARP for IPv4 (the kernel answers ARP requests for the VIPs itself), neighbour
// advertisements for IPv6 and answers to solicitations for the IPv6 VIPs (the kernel does not
// answer those; see NDP).
type Neighbours struct {
	arp *GARP
	ndp *NDP
}

// NewNeighbours prepares both on ifname. gateway, which may be the zero Addr, is the target of
// the announcements of its own family.
func NewNeighbours(ifname string, gateway netip.Addr) (*Neighbours, error) {
	g4, g6 := netip.Addr{}, netip.Addr{}
	switch family.Of(gateway) {
	case family.IPv4:
		g4 = gateway
	case family.IPv6:
		g6 = gateway
	}
	a, err := NewGARP(ifname, g4)
	if err != nil {
		return nil, err
	}
	n, err := NewNDP(ifname, g6)
	if err != nil {
		return nil, err
	}
	return &Neighbours{arp: a, ndp: n}, nil
}

// Announce announces vip in its family's protocol.
func (n *Neighbours) Announce(vip netip.Addr) error {
	if vip.Is6() {
		return n.ndp.Announce(vip)
	}
	return n.arp.Announce(vip)
}

// Serve answers neighbour solicitations for exactly the IPv6 addresses among vips.
func (n *Neighbours) Serve(vips []netip.Addr) error { return n.ndp.Serve(vips) }

// Answered counts the solicitations for VIPs answered so far.
func (n *Neighbours) Answered() uint64 { return n.ndp.Stats().Answered }

// Close releases both sockets.
func (n *Neighbours) Close() error { return errors.Join(n.arp.Close(), n.ndp.Close()) }
