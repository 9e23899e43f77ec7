package netops

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

var _ Links = (*FakeLinks)(nil)

// FakeLinks is a semantic fake of Links: devices with a kind ("dummy", "ipip", or anything
// a test seeds with AddDevice), an up flag and IPv4 addresses. It refuses what the kernel
// refuses with the same classes, counts calls, fails on demand and dumps itself as text.
// A new fake holds a loopback device "lo" that is down and has no address, as in a fresh
// network namespace. It is safe for concurrent use.
type FakeLinks struct {
	mu      sync.Mutex // guards everything below
	devices map[string]*fakeDevice
	nextMAC byte
	book    callBook
}

type fakeDevice struct {
	kind  string
	up    bool
	hw    net.HardwareAddr
	addrs map[netip.Prefix]bool
}

// NewFakeLinks returns a fake holding only "lo".
func NewFakeLinks() *FakeLinks {
	f := &FakeLinks{
		devices: map[string]*fakeDevice{},
		book: newCallBook(
			[]string{"Addrs", "AddrDevices", "HardwareAddr"},
			[]string{"EnsureDummy", "EnsureIPIP", "EnsureIP6Tnl", "AddAddr", "DelAddr"}),
	}
	// netlink reports the loopback device's kind as "device" (no IFLA_INFO_KIND), and no
	// hardware address because it is all zeroes.
	f.devices["lo"] = &fakeDevice{kind: "device", addrs: map[netip.Prefix]bool{}}
	return f
}

// EnsureDummy creates a dummy device if missing and sets it up.
func (f *FakeLinks) EnsureDummy(name string) error {
	return f.ensure("EnsureDummy", name, "dummy")
}

// EnsureIPIP creates an ipip device if missing and sets it up.
func (f *FakeLinks) EnsureIPIP(name string) error {
	return f.ensure("EnsureIPIP", name, "ipip")
}

// EnsureIP6Tnl creates an ip6tnl device if missing and sets it up.
func (f *FakeLinks) EnsureIP6Tnl(name string) error {
	return f.ensure("EnsureIP6Tnl", name, "ip6tnl")
}

func (f *FakeLinks) ensure(op, name, kind string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call(op, name); err != nil {
		return err
	}
	if err := checkLinkName(name); err != nil {
		return err
	}
	d := f.devices[name]
	if d == nil {
		d = f.newDevice(name, kind)
	}
	if d.kind != kind {
		return refuse(ErrExist, "device %s is a %s device, not %s", name, d.kind, kind)
	}
	d.up = true
	return nil
}

func (f *FakeLinks) newDevice(name, kind string) *fakeDevice {
	f.nextMAC++
	d := &fakeDevice{kind: kind, addrs: map[netip.Prefix]bool{}}
	if kind != "ipip" && kind != "ip6tnl" { // a tunnel's link address is all zeroes, which netlink reports as nil
		d.hw = net.HardwareAddr{0x02, 0, 0, 0, 0, f.nextMAC}
	}
	f.devices[name] = d
	return d
}

// Addrs returns the IPv4 addresses of dev, sorted.
func (f *FakeLinks) Addrs(dev string) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("Addrs", dev); err != nil {
		return nil, err
	}
	d, err := f.device(dev)
	if err != nil {
		return nil, err
	}
	return sortedPrefixes(d.addrs), nil
}

// AddrDevices maps every address of every device to the devices that hold it (sorted).
func (f *FakeLinks) AddrDevices() (map[netip.Addr][]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("AddrDevices", ""); err != nil {
		return nil, err
	}
	out := map[netip.Addr][]string{}
	for _, name := range slices.Sorted(maps.Keys(f.devices)) {
		for p := range f.devices[name].addrs {
			out[p.Addr()] = append(out[p.Addr()], name)
		}
	}
	return out, nil
}

// AddAddr adds a host address (IPv4 /32, IPv6 /128) to dev; ErrExist if it is there.
func (f *FakeLinks) AddAddr(dev string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("AddAddr", dev+" "+p.String()); err != nil {
		return err
	}
	if err := checkAddrPrefix(dev, p); err != nil {
		return err
	}
	d, err := f.device(dev)
	if err != nil {
		return err
	}
	if d.addrs[p] {
		return refuse(ErrExist, "address %s on %s", p, dev)
	}
	d.addrs[p] = true
	return nil
}

// DelAddr removes a host address from dev; ErrNotExist if it is not there (a /24 of the
// same address is another address and stays).
func (f *FakeLinks) DelAddr(dev string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("DelAddr", dev+" "+p.String()); err != nil {
		return err
	}
	if err := checkAddrPrefix(dev, p); err != nil {
		return err
	}
	d, err := f.device(dev)
	if err != nil {
		return err
	}
	if !d.addrs[p] {
		return refuse(ErrNotExist, "address %s on %s", p, dev)
	}
	delete(d.addrs, p)
	return nil
}

// HardwareAddr returns the link-layer address of dev (nil for lo and ipip devices, as
// KernelLinks reports them).
func (f *FakeLinks) HardwareAddr(dev string) (net.HardwareAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("HardwareAddr", dev); err != nil {
		return nil, err
	}
	d, err := f.device(dev)
	if err != nil {
		return nil, err
	}
	return slices.Clone(d.hw), nil
}

func (f *FakeLinks) device(name string) (*fakeDevice, error) {
	if err := checkLinkName(name); err != nil {
		return nil, err
	}
	d := f.devices[name]
	if d == nil {
		return nil, refuse(ErrNotExist, "device %s", name)
	}
	return d, nil
}

func sortedPrefixes(set map[netip.Prefix]bool) []netip.Prefix {
	return slices.SortedFunc(maps.Keys(set), func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmpInt(a.Bits(), b.Bits())
	})
}

// Dump formats the devices sorted by name, each followed by its addresses:
//
//	lo device down
//	ravel0 dummy up
//	  10.0.0.1/32
func (f *FakeLinks) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(f.devices)) {
		d := f.devices[name]
		state := "down"
		if d.up {
			state = "up"
		}
		fmt.Fprintf(&b, "%s %s %s\n", name, d.kind, state)
		for _, p := range sortedPrefixes(d.addrs) {
			fmt.Fprintf(&b, "  %s\n", p)
		}
	}
	return b.String()
}
