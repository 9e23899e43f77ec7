package netops

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ravel-lb/ravel/family"
)

// The Links conformance suite, run against FakeLinks everywhere and against the kernel in
// the QEMU guest. Each run starts from a namespace holding "lo" (down, no address) and a
// foreign dummy device "foreign0" (up, 192.0.2.1/24) that ravel must leave as it is.

// linksEnv is a fresh namespace: the Links under test, and views of the devices that Links
// does not offer.
type linksEnv struct {
	links  Links
	up     func(t *testing.T, dev string) bool   // is dev up
	kind   func(t *testing.T, dev string) string // "dummy", "ipip", "device" (lo), ...
	hwaddr func(dev string) (net.HardwareAddr, error)
	// unusable lists dev's IPv6 addresses that duplicate address detection holds back
	// (tentative or dadfailed); nil where there is no DAD (the fake).
	unusable func(t *testing.T, dev string) []netip.Prefix
}

// foreignAddr is the address of the foreign device in every linksEnv.
var foreignAddr = netip.MustParsePrefix("192.0.2.1/24")

func p32(s string) netip.Prefix { return netip.PrefixFrom(netip.MustParseAddr(s), 32) }

func p128(s string) netip.Prefix { return netip.PrefixFrom(netip.MustParseAddr(s), 128) }

func conformanceLinks(t *testing.T, newEnv func(t *testing.T) linksEnv) {
	addrs := func(t *testing.T, l Links, dev string, want ...netip.Prefix) {
		t.Helper()
		got, err := l.Addrs(dev)
		if err != nil {
			t.Fatalf("Addrs(%s): %v", dev, err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("Addrs(%s) (-want +got):\n%s", dev, diff)
		}
	}
	foreignIntact := func(t *testing.T, e linksEnv) {
		t.Helper()
		if !e.up(t, "foreign0") || e.kind(t, "foreign0") != "dummy" {
			t.Errorf("foreign0 changed: up=%v kind=%s", e.up(t, "foreign0"), e.kind(t, "foreign0"))
		}
		addrs(t, e.links, "foreign0", foreignAddr)
	}

	t.Run("EnsureDummy creates, sets up, and is idempotent", func(t *testing.T) {
		e := newEnv(t)
		for i := range 2 {
			checkClass(t, fmt.Sprintf("EnsureDummy #%d", i), e.links.EnsureDummy("ravel0"), "ok")
		}
		if !e.up(t, "ravel0") || e.kind(t, "ravel0") != "dummy" {
			t.Errorf("ravel0: up=%v kind=%s, want an up dummy", e.up(t, "ravel0"), e.kind(t, "ravel0"))
		}
		addrs(t, e.links, "ravel0")
		foreignIntact(t, e)
	})

	t.Run("EnsureDummy refuses a device of another kind and leaves it alone", func(t *testing.T) {
		e := newEnv(t)
		checkClass(t, "EnsureDummy(lo)", e.links.EnsureDummy("lo"), "exist")
		if e.up(t, "lo") {
			t.Errorf("EnsureDummy(lo) set lo up")
		}
		checkClass(t, "EnsureDummy(ravel0)", e.links.EnsureDummy("ravel0"), "ok")
		checkClass(t, "EnsureIPIP(ravel0)", e.links.EnsureIPIP("ravel0"), "exist")
		checkClass(t, "EnsureIPIP(lo)", e.links.EnsureIPIP("lo"), "exist")
	})

	t.Run("EnsureIPIP makes tunl0 exist and be up", func(t *testing.T) {
		e := newEnv(t)
		for i := range 2 {
			checkClass(t, fmt.Sprintf("EnsureIPIP #%d", i), e.links.EnsureIPIP("tunl0"), "ok")
		}
		if !e.up(t, "tunl0") || e.kind(t, "tunl0") != "ipip" {
			t.Errorf("tunl0: up=%v kind=%s, want an up ipip device", e.up(t, "tunl0"), e.kind(t, "tunl0"))
		}
		checkClass(t, "EnsureDummy(tunl0)", e.links.EnsureDummy("tunl0"), "exist")
	})

	t.Run("EnsureIP6Tnl makes ip6tnl0 exist and be up", func(t *testing.T) {
		e := newEnv(t)
		for i := range 2 {
			checkClass(t, fmt.Sprintf("EnsureTunnel(IPv6) #%d", i), EnsureTunnel(e.links, family.IPv6), "ok")
		}
		if !e.up(t, "ip6tnl0") || e.kind(t, "ip6tnl0") != "ip6tnl" {
			t.Errorf("ip6tnl0: up=%v kind=%s, want an up ip6tnl device", e.up(t, "ip6tnl0"), e.kind(t, "ip6tnl0"))
		}
		checkClass(t, "EnsureIP6Tnl(lo)", e.links.EnsureIP6Tnl("lo"), "exist")
		checkClass(t, "EnsureDummy(ip6tnl0)", e.links.EnsureDummy("ip6tnl0"), "exist")
		foreignIntact(t, e)
	})

	t.Run("bad device names are ErrInvalid", func(t *testing.T) {
		e := newEnv(t)
		for _, name := range []string{"", ".", "..", "a/b", "a:b", "a b", "sixteen-chars-xx"} {
			checkClass(t, fmt.Sprintf("EnsureDummy(%q)", name), e.links.EnsureDummy(name), "invalid")
			checkClass(t, fmt.Sprintf("AddAddr(%q)", name), e.links.AddAddr(name, p32("10.0.0.1")), "invalid")
		}
		checkClass(t, "fifteen chars", e.links.EnsureDummy("fifteen-chars-x"), "ok")
	})

	t.Run("addresses", func(t *testing.T) {
		e := newEnv(t)
		checkClass(t, "EnsureDummy", e.links.EnsureDummy("ravel0"), "ok")
		checkClass(t, "AddAddr", e.links.AddAddr("ravel0", p32("10.0.0.2")), "ok")
		checkClass(t, "AddAddr", e.links.AddAddr("ravel0", p32("10.0.0.1")), "ok")
		checkClass(t, "AddAddr again", e.links.AddAddr("ravel0", p32("10.0.0.1")), "exist")
		addrs(t, e.links, "ravel0", p32("10.0.0.1"), p32("10.0.0.2"))
		checkClass(t, "DelAddr", e.links.DelAddr("ravel0", p32("10.0.0.1")), "ok")
		checkClass(t, "DelAddr again", e.links.DelAddr("ravel0", p32("10.0.0.1")), "notexist")
		addrs(t, e.links, "ravel0", p32("10.0.0.2"))
		foreignIntact(t, e)
	})

	t.Run("IPv6 addresses: /128, usable at once, link-local left out", func(t *testing.T) {
		e := newEnv(t)
		checkClass(t, "EnsureDummy", e.links.EnsureDummy("ravel0"), "ok")
		checkClass(t, "AddAddr v6", e.links.AddAddr("ravel0", p128("2001:db8::2")), "ok")
		checkClass(t, "AddAddr v4", e.links.AddAddr("ravel0", p32("10.0.0.1")), "ok")
		checkClass(t, "AddAddr v6", e.links.AddAddr("ravel0", p128("2001:db8::1")), "ok")
		checkClass(t, "AddAddr v6 again", e.links.AddAddr("ravel0", p128("2001:db8::1")), "exist")
		// The kernel gives the up dummy a fe80:: address of its own: not listed.
		addrs(t, e.links, "ravel0", p32("10.0.0.1"), p128("2001:db8::1"), p128("2001:db8::2"))
		if e.unusable != nil {
			if u := e.unusable(t, "ravel0"); len(u) > 0 {
				t.Errorf("VIPs held back by duplicate address detection: %v", u)
			}
		}
		checkClass(t, "DelAddr v6", e.links.DelAddr("ravel0", p128("2001:db8::1")), "ok")
		checkClass(t, "DelAddr v6 again", e.links.DelAddr("ravel0", p128("2001:db8::1")), "notexist")
		addrs(t, e.links, "ravel0", p32("10.0.0.1"), p128("2001:db8::2"))
		foreignIntact(t, e)
	})

	t.Run("a foreign address with the same IP survives", func(t *testing.T) {
		e := newEnv(t)
		checkClass(t, "EnsureDummy", e.links.EnsureDummy("ravel0"), "ok")
		vip := p32(foreignAddr.Addr().String())
		checkClass(t, "AddAddr on ravel0", e.links.AddAddr("ravel0", vip), "ok")
		checkClass(t, "DelAddr on ravel0", e.links.DelAddr("ravel0", vip), "ok")
		// On the foreign device itself, the /32 is another address than its /24.
		checkClass(t, "DelAddr /32 on foreign0", e.links.DelAddr("foreign0", vip), "notexist")
		checkClass(t, "AddAddr /32 on foreign0", e.links.AddAddr("foreign0", vip), "ok")
		addrs(t, e.links, "foreign0", foreignAddr, vip)
		checkClass(t, "DelAddr /32 on foreign0", e.links.DelAddr("foreign0", vip), "ok")
		foreignIntact(t, e)
	})

	t.Run("addresses ravel does not manage are ErrInvalid", func(t *testing.T) {
		e := newEnv(t)
		checkClass(t, "EnsureDummy", e.links.EnsureDummy("ravel0"), "ok")
		for _, p := range []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.0.0.1/31"),
			netip.MustParsePrefix("2001:db8::1/64"), netip.MustParsePrefix("2001:db8::1/32"),
			netip.MustParsePrefix("::ffff:10.0.0.1/128"), netip.PrefixFrom(netip.MustParseAddr("fe80::1%ravel0"), 128), {},
		} {
			checkClass(t, "AddAddr "+p.String(), e.links.AddAddr("ravel0", p), "invalid")
			checkClass(t, "DelAddr "+p.String(), e.links.DelAddr("ravel0", p), "invalid")
		}
		addrs(t, e.links, "ravel0")
	})

	t.Run("a missing device is ErrNotExist", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.links.Addrs("nosuch0")
		checkClass(t, "Addrs", err, "notexist")
		checkClass(t, "AddAddr", e.links.AddAddr("nosuch0", p32("10.0.0.1")), "notexist")
		checkClass(t, "DelAddr", e.links.DelAddr("nosuch0", p32("10.0.0.1")), "notexist")
		_, err = e.hwaddr("nosuch0")
		checkClass(t, "HardwareAddr", err, "notexist")
	})

	t.Run("HardwareAddr", func(t *testing.T) {
		e := newEnv(t)
		checkClass(t, "EnsureDummy", e.links.EnsureDummy("ravel0"), "ok")
		checkClass(t, "EnsureIPIP", e.links.EnsureIPIP("tunl0"), "ok")
		for dev, n := range map[string]int{"ravel0": 6, "lo": 0, "tunl0": 0} {
			hw, err := e.hwaddr(dev)
			if err != nil || len(hw) != n {
				t.Errorf("HardwareAddr(%s) = %v, %v; want %d bytes", dev, hw, err, n)
			}
		}
	})
}

func TestConformanceLinksFake(t *testing.T) {
	conformanceLinks(t, func(t *testing.T) linksEnv {
		f := NewFakeLinks()
		f.AddDevice("foreign0", "dummy", true, foreignAddr)
		return linksEnv{
			links:  f,
			up:     func(_ *testing.T, dev string) bool { return f.IsUp(dev) },
			kind:   func(_ *testing.T, dev string) string { return f.Kind(dev) },
			hwaddr: f.HardwareAddr,
		}
	})
}
