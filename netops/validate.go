package netops

import (
	"net/netip"
	"strings"

	"github.com/ravel-lb/ravel/family"
)

// schedFlagMask is every scheduler flag bit; the other service flag bits
// (IP_VS_SVC_F_PERSISTENT 0x1, IP_VS_SVC_F_HASHED 0x2, IP_VS_SVC_F_ONEPACKET 0x4) are not
// ravel's to set, and HASHED is set by the kernel itself on every service it reads back.
const schedFlagMask = FlagSched1 | FlagSched2 | FlagSched3

// Checks made before the kernel is asked, by the real implementations and the fakes alike.
// They cover what ravel never programs (other protocols, mixed address families) and what
// the kernel would accept but read back wrong (a weight above 65535: see MaxWeight and
// ipvs.go), so that the two implementations refuse the same things with the same class.

// checkServiceKey refuses keys that cannot name an IPVS service ravel programs.
func checkServiceKey(k ServiceKey) error {
	switch {
	case !k.VIP.IsValid():
		return refuse(ErrInvalid, "service %s: no address", k)
	case k.VIP.Is4In6() || k.VIP.Zone() != "":
		return refuse(ErrInvalid, "service %s: use a plain IPv4 or IPv6 address", k)
	case k.Proto != TCP && k.Proto != UDP:
		return refuse(ErrInvalid, "service %s: ravel programs only tcp and udp", k)
	}
	return nil
}

// checkService refuses services ravel never programs.
func checkService(s Service) error {
	if err := checkServiceKey(s.ServiceKey); err != nil {
		return err
	}
	if s.Flags&^schedFlagMask != 0 {
		return refuse(ErrInvalid, "service %s: flags %#x are not scheduler flags", s.ServiceKey, uint32(s.Flags))
	}
	if s.Scheduler == "" || strings.ContainsAny(s.Scheduler, "/ \t\n\x00") {
		return refuse(ErrInvalid, "service %s: bad scheduler name %q", s.ServiceKey, s.Scheduler)
	}
	return nil
}

// checkDestKey refuses destination keys of another address family than the service: the
// kernel allows mixed families only for tunnel destinations, and moby/ipvs never sends the
// destination's family (IPVS_DEST_ATTR_ADDR_FAMILY), so the kernel would read an IPv4
// address as the first 4 bytes of an IPv6 one.
func checkDestKey(k ServiceKey, d DestKey) error {
	if err := checkServiceKey(k); err != nil {
		return err
	}
	switch {
	case !d.Addr.IsValid():
		return refuse(ErrInvalid, "destination %s of %s: no address", d, k)
	case d.Addr.Is4In6() || d.Addr.Zone() != "":
		return refuse(ErrInvalid, "destination %s of %s: use a plain IPv4 or IPv6 address", d, k)
	case d.Addr.Is4() != k.VIP.Is4():
		return refuse(ErrInvalid, "destination %s of %s: address family differs from the service", d, k)
	}
	return nil
}

// checkDest refuses destinations with values outside ravel's ranges.
func checkDest(k ServiceKey, d Destination) error {
	if err := checkDestKey(k, d.DestKey); err != nil {
		return err
	}
	switch {
	case d.Weight < 0 || d.Weight > MaxWeight:
		return refuse(ErrInvalid, "destination %s of %s: weight %d outside 0..%d", d.DestKey, k, d.Weight, MaxWeight)
	case d.Upper > MaxWeight || d.Lower > MaxWeight:
		return refuse(ErrInvalid, "destination %s of %s: thresholds %d/%d above %d", d.DestKey, k, d.Upper, d.Lower, MaxWeight)
	case d.Forward != ForwardDR && d.Forward != ForwardTunnel && d.Forward != ForwardNAT:
		return refuse(ErrInvalid, "destination %s of %s: unknown forwarding %s", d.DestKey, k, d.Forward)
	}
	return nil
}

// kernelRefusesDest reports what the kernel itself refuses in a destination that passed
// checkDest, for the fake to imitate: a lower threshold above the upper one (ERANGE, even
// when the upper is 0 = none: ip_vs_add_dest and ip_vs_edit_dest compare them
// unconditionally), and, when adding, an address that is not unicast (EINVAL:
// ip_vs_new_dest wants inet_addr_type RTN_LOCAL or RTN_UNICAST, which excludes 0.0.0.0,
// multicast and 255.255.255.255, but not the rest of 0.0.0.0/8 on 6.1, as seen in the
// guest; for IPv6, unicast and not link-local). The fake cannot know the namespace's subnet
// broadcast addresses, which the kernel also refuses.
func kernelRefusesDest(k ServiceKey, d Destination, adding bool) error {
	if d.Lower > d.Upper {
		return refuse(ErrInvalid, "destination %s of %s: lower threshold %d above upper %d", d.DestKey, k, d.Lower, d.Upper)
	}
	if adding && !kernelUnicast(d.Addr) {
		return refuse(ErrInvalid, "destination %s of %s: not a unicast address", d.DestKey, k)
	}
	return nil
}

// kernelUnicast reports whether ip_vs_new_dest would take a as a unicast address.
func kernelUnicast(a netip.Addr) bool {
	if a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	return !a.IsUnspecified() && !a.IsMulticast() && !(a.Is6() && a.IsLinkLocalUnicast())
}

// checkLinkName refuses names the kernel refuses (dev_valid_name: 1 to 15 bytes, not "."
// or "..", no '/', ':' or white space) with ErrInvalid.
func checkLinkName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\r\v\f\x00") {
		return refuse(ErrInvalid, "device name %q", name)
	}
	return nil
}

// checkAddrPrefix refuses addresses other than host prefixes (IPv4 /32, IPv6 /128), the only
// ones ravel adds; IPv4-mapped or zoned ones, which name no address of their own; and IPv6
// link-local ones, which Addrs leaves out (the kernel's own fe80:: per device).
func checkAddrPrefix(dev string, p netip.Prefix) error {
	a := p.Addr()
	if !p.IsValid() || a.Is4In6() || a.Zone() != "" || a.Is6() && a.IsLinkLocalUnicast() || p != family.Of(a).Host(a) {
		return refuse(ErrInvalid, "address %s on %s: ravel manages host addresses only (IPv4 /32, IPv6 /128)", p, dev)
	}
	return nil
}
