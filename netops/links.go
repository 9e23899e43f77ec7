package netops

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ravel-lb/ravel/family"
)

var _ Links = (*KernelLinks)(nil)

// KernelLinks manages devices and addresses over rtnetlink (github.com/vishvananda/netlink)
// in the network namespace it was created in. It only creates devices and adds or removes
// the addresses it is asked to: it never deletes a device nor changes one ravel does not
// name. It is safe for concurrent use (netlink.Handle locks its socket).
type KernelLinks struct {
	h *netlink.Handle // read-only after construction
}

// NewLinks returns Links for the current network namespace (of the calling thread).
func NewLinks() (*KernelLinks, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket: %w", err)
	}
	return &KernelLinks{h: h}, nil
}

// NewLinksInNetns returns Links for the network namespace at path.
func NewLinksInNetns(path string) (*KernelLinks, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close() // the socket keeps the namespace
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket in %s: %w", path, err)
	}
	return &KernelLinks{h: h}, nil
}

// Close releases the netlink socket.
func (l *KernelLinks) Close() error {
	l.h.Close()
	return nil
}

// EnsureDummy creates the dummy device name if missing and sets it up.
func (l *KernelLinks) EnsureDummy(name string) error {
	return l.ensure(name, &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
}

// EnsureIPIP makes sure the IPIP device name (tunl0) exists and is up.
//
// tunl0 is the ipip module's fallback device: the module creates it in every network
// namespace when it loads and in each new namespace afterwards (unless
// net.core.fb_tunnels_only_for_init_net says otherwise). It receives every IPIP packet
// that no configured tunnel claims, which is what a realserver behind an IPVS tunnel
// director needs. If it is missing, ask for an ipip link of that name: when the module is
// not loaded yet, the kernel loads it for the request, the module creates tunl0 itself and
// the request then fails with EEXIST, so EEXIST is followed by a new look-up. Another name
// would make a second catch-all tunnel (no local, no remote), which the kernel refuses with
// EEXIST while tunl0 exists.
func (l *KernelLinks) EnsureIPIP(name string) error {
	return l.ensure(name, &netlink.Iptun{
		LinkAttrs: netlink.LinkAttrs{Name: name},
		PMtuDisc:  1, // as the fallback device
		Proto:     unix.IPPROTO_IPIP,
	})
}

// EnsureIP6Tnl makes the IPv6 tunnel device name (ip6tnl0) exist and be up: IPVS's tunnel
// forwarding for an IPv6 service encapsulates in IPv6 (ip6ip6), and ip6tnl0, the catch-all
// device the ip6_tunnel module makes when it loads (any local, any remote), is what
// decapsulates it on a realserver, as tunl0 does for IPIP. Creating it loads the module,
// which makes ip6tnl0 itself: the same EEXIST and look-up as for tunl0.
func (l *KernelLinks) EnsureIP6Tnl(name string) error {
	return l.ensure(name, &netlink.Ip6tnl{
		LinkAttrs: netlink.LinkAttrs{Name: name},
		Proto:     unix.IPPROTO_IPV6,
	})
}

// EnsureTunnel makes the catch-all decapsulation device of family f exist and be up on l:
// tunl0 for IPv4 (IPIP), ip6tnl0 for IPv6 (ip6ip6).
func EnsureTunnel(l Links, f family.Family) error {
	if f == family.IPv6 {
		return l.EnsureIP6Tnl(TunnelDevice(f))
	}
	return l.EnsureIPIP(TunnelDevice(f))
}

// TunnelDevice is the name of family f's catch-all decapsulation device.
func TunnelDevice(f family.Family) string {
	if f == family.IPv6 {
		return "ip6tnl0"
	}
	return "tunl0"
}

func (l *KernelLinks) ensure(name string, want netlink.Link) error {
	if err := checkLinkName(name); err != nil {
		return err
	}
	link, err := l.h.LinkByName(name)
	if isLinkNotFound(err) {
		addErr := l.h.LinkAdd(want)
		if addErr != nil && !errors.Is(addErr, unix.EEXIST) {
			return kernelError(addErr, "create %s device %s", want.Type(), name)
		}
		link, err = l.h.LinkByName(name)
		if addErr != nil && isLinkNotFound(err) {
			// EEXIST for a name that is still free: the kernel has an equivalent device
			// under another name (for ipip: the catch-all tunl0), seen in the guest.
			return kernelError(addErr, "create %s device %s (an equivalent device exists under another name)", want.Type(), name)
		}
	}
	if err != nil {
		return kernelError(err, "look up device %s", name)
	}
	if link.Type() != want.Type() {
		return refuse(ErrExist, "device %s is a %s device, not %s", name, link.Type(), want.Type())
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := l.h.LinkSetUp(link); err != nil {
			return kernelError(err, "set %s up", name)
		}
	}
	return nil
}

// Addrs lists the IPv4 and global IPv6 addresses of dev, sorted. The IPv6 link-local address
// the kernel gives every device that is up is left out: it is nobody's VIP.
func (l *KernelLinks) Addrs(dev string) ([]netip.Prefix, error) {
	link, err := l.link(dev)
	if err != nil {
		return nil, err
	}
	var addrs []netlink.Addr
	// A dump that races with a change ends with NLM_F_DUMP_INTR; netlink v1.3 then returns
	// the partial result with ErrDumpInterrupted. Ask again a few times.
	for range 5 {
		addrs, err = l.h.AddrList(link, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, kernelError(err, "list addresses of %s", dev)
	}
	set := make(map[netip.Prefix]bool, len(addrs))
	for _, a := range addrs {
		ip, ok := listedAddr(a)
		if !ok {
			continue
		}
		bits, _ := a.Mask.Size()
		set[netip.PrefixFrom(ip, bits)] = true
	}
	return sortedPrefixes(set), nil
}

// AddrDevices maps every IPv4 and global IPv6 address of every device to the devices that
// hold it: one dump of the namespace's addresses.
func (l *KernelLinks) AddrDevices() (map[netip.Addr][]string, error) {
	var addrs []netlink.Addr
	var err error
	for range 5 { // as in Addrs: a dump interrupted by a change is asked again
		addrs, err = l.h.AddrList(nil, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, kernelError(err, "list addresses")
	}
	names := map[int]string{}
	out := map[netip.Addr][]string{}
	for _, a := range addrs {
		ip, ok := listedAddr(a)
		if !ok {
			continue
		}
		name, ok := names[a.LinkIndex]
		if !ok {
			link, err := l.h.LinkByIndex(a.LinkIndex)
			if err != nil {
				continue // gone since the dump
			}
			name = link.Attrs().Name
			names[a.LinkIndex] = name
		}
		out[ip] = append(out[ip], name)
	}
	return out, nil
}

// AddAddr adds a host address (IPv4 /32, IPv6 /128) to dev; ErrExist if it is there.
//
// An IPv6 address is added with IFA_F_NODAD. Duplicate address detection would keep it
// tentative for about a second (unusable as a source, not answered), and on a VIP held by
// several directors at once, as with BGP ECMP or while a failover settles, it would find the
// other holder and leave the address "dadfailed" for good.
func (l *KernelLinks) AddAddr(dev string, p netip.Prefix) error {
	if err := checkAddrPrefix(dev, p); err != nil {
		return err
	}
	link, err := l.link(dev)
	if err != nil {
		return err
	}
	a := toNetlinkAddr(p)
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return kernelError(l.h.AddrAdd(link, a), "add address %s to %s", p, dev)
}

// DelAddr removes a host address (IPv4 /32, IPv6 /128) from dev; ErrNotExist if it is not there. The kernel
// matches the prefix length too, so a foreign 10.0.0.1/24 survives DelAddr of 10.0.0.1/32;
// it reports a missing address with EADDRNOTAVAIL.
func (l *KernelLinks) DelAddr(dev string, p netip.Prefix) error {
	if err := checkAddrPrefix(dev, p); err != nil {
		return err
	}
	link, err := l.link(dev)
	if err != nil {
		return err
	}
	return kernelError(l.h.AddrDel(link, toNetlinkAddr(p)), "delete address %s from %s", p, dev)
}

// HardwareAddr returns the link-layer address of dev: 6 bytes for a dummy or Ethernet
// device, nil for an all-zero address (lo, tunl0), which netlink v1.3 leaves out.
func (l *KernelLinks) HardwareAddr(dev string) (net.HardwareAddr, error) {
	link, err := l.link(dev)
	if err != nil {
		return nil, err
	}
	return slices.Clone(link.Attrs().HardwareAddr), nil
}

func (l *KernelLinks) link(dev string) (netlink.Link, error) {
	if err := checkLinkName(dev); err != nil {
		return nil, err
	}
	link, err := l.h.LinkByName(dev)
	if isLinkNotFound(err) {
		return nil, refuse(ErrNotExist, "device %s", dev)
	}
	if err != nil {
		return nil, kernelError(err, "look up device %s", dev)
	}
	return link, nil
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// toNetlinkAddr builds a host address without a broadcast address (netlink adds one only below
// /31) and without a label.
func toNetlinkAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
}

// listedAddr is the address of a dumped entry, or false for one ravel never owns: an IPv6
// link-local address (the kernel adds fe80::/64 to every device that comes up, the dummy
// device too).
func listedAddr(a netlink.Addr) (netip.Addr, bool) {
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	return ip, !(ip.Is6() && ip.IsLinkLocalUnicast())
}
