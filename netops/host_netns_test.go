package netops

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Tests against the machine's own kernel that need no IPVS, dummy or ipip: they run on the
// host (in throwaway network namespaces) and in the guest alike.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
}

// TestNewIPVSFailsWithoutIPVS checks that a kernel without IPVS is an error at construction,
// not a handle that silently does nothing (see the quirks on KernelIPVS).
func TestNewIPVSFailsWithoutIPVS(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Skip("this kernel has IPVS")
	}
	k, err := NewIPVS()
	if err == nil {
		k.Close()
		t.Fatal("NewIPVS succeeded on a kernel without IPVS")
	}
	if !strings.Contains(err.Error(), "IPVS is not available") {
		t.Errorf("error %q does not say IPVS is missing", err)
	}
}

// TestNetnsLinksLoopback exercises KernelLinks on lo of a fresh namespace.
func TestNetnsLinksLoopback(t *testing.T) {
	requireRoot(t)
	n := newTestNetns(t, true)
	l := n.links(t)
	checkClass(t, "EnsureDummy(lo)", l.EnsureDummy("lo"), "exist")
	before, err := l.Addrs("lo")
	must(t, err)
	if diff := cmp.Diff([]string{"127.0.0.1/8", "::1/128"}, prefixStrings(before)); diff != "" {
		t.Errorf("Addrs(lo) of a fresh namespace (-want +got):\n%s", diff)
	}
	vip := p32("10.0.0.1")
	checkClass(t, "AddAddr", l.AddAddr("lo", vip), "ok")
	checkClass(t, "AddAddr again", l.AddAddr("lo", vip), "exist")
	got, err := l.Addrs("lo")
	must(t, err)
	if diff := cmp.Diff([]string{"10.0.0.1/32", "127.0.0.1/8", "::1/128"}, prefixStrings(got)); diff != "" {
		t.Errorf("Addrs(lo) (-want +got):\n%s", diff)
	}
	checkClass(t, "DelAddr", l.DelAddr("lo", vip), "ok")
	checkClass(t, "DelAddr again", l.DelAddr("lo", vip), "notexist")
	checkClass(t, "DelAddr 127.0.0.1/32", l.DelAddr("lo", p32("127.0.0.1")), "notexist")
	got, err = l.Addrs("lo")
	must(t, err)
	if diff := cmp.Diff([]string{"127.0.0.1/8", "::1/128"}, prefixStrings(got)); diff != "" {
		t.Errorf("Addrs(lo) after DelAddr (-want +got):\n%s", diff)
	}
	_, err = l.Addrs("nosuch0")
	checkClass(t, "Addrs(nosuch0)", err, "notexist")
	hw, err := l.HardwareAddr("lo")
	if err != nil || hw != nil {
		t.Errorf("HardwareAddr(lo) = %v, %v", hw, err)
	}
}

// TestNetnsAddrDevices lists every address of a namespace with its devices, one address on
// two devices included (a realserver's VIP on lo while the director's is on its dummy).
func TestNetnsAddrDevices(t *testing.T) {
	requireRoot(t)
	n := newTestNetns(t, true)
	l := n.links(t)
	must(t, n.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}))
	must(t, l.AddAddr("lo", p32("10.0.0.1")))
	must(t, l.AddAddr("veth0", p32("10.0.0.1")))
	veth, err := n.nl.LinkByName("veth0")
	must(t, err)
	must(t, n.nl.AddrAdd(veth, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 0, 9, 2), Mask: net.CIDRMask(24, 32)}}))
	got, err := l.AddrDevices()
	must(t, err)
	for _, devs := range got {
		slices.Sort(devs)
	}
	want := map[netip.Addr][]string{
		netip.MustParseAddr("127.0.0.1"): {"lo"},
		netip.MustParseAddr("::1"):       {"lo"},
		netip.MustParseAddr("10.0.0.1"):  {"lo", "veth0"},
		netip.MustParseAddr("10.0.9.2"):  {"veth0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AddrDevices (-want +got):\n%s", diff)
	}
}

// TestNetnsIPv6Addrs: on a veth that is up (unlike lo and a dummy device, a veth runs
// duplicate address detection), an IPv6 VIP that AddAddr binds is usable at once, not
// tentative, and the fe80:: address the kernel gives the veth is not listed. Unlike IPv4, an
// IPv6 address is one per device whatever its prefix length: a foreign /64 of the VIP's
// address makes AddAddr of the /128 ErrExist, and DelAddr of the /128 ErrNotExist, so the
// foreign address survives.
func TestNetnsIPv6Addrs(t *testing.T) {
	requireRoot(t)
	n := newTestNetns(t, true)
	l := n.links(t)
	must(t, n.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth1"}))
	for _, dev := range []string{"veth0", "veth1"} {
		link, err := n.nl.LinkByName(dev)
		must(t, err)
		must(t, n.nl.LinkSetUp(link))
	}
	veth, err := n.nl.LinkByName("veth0")
	must(t, err)
	foreign := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("2001:db8::1"), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	must(t, n.nl.AddrAdd(veth, foreign))
	checkClass(t, "AddAddr over a foreign /64", l.AddAddr("veth0", p128("2001:db8::1")), "exist")
	checkClass(t, "DelAddr of the /128", l.DelAddr("veth0", p128("2001:db8::1")), "notexist")
	vip := p128("2001:db8::2")
	checkClass(t, "AddAddr", l.AddAddr("veth0", vip), "ok")
	got, err := l.Addrs("veth0")
	must(t, err)
	if diff := cmp.Diff([]string{"2001:db8::1/64", "2001:db8::2/128"}, prefixStrings(got)); diff != "" {
		t.Errorf("Addrs(veth0) (-want +got):\n%s", diff)
	}
	for _, p := range n.unusable(t, "veth0") {
		if !p.Addr().IsLinkLocalUnicast() { // the kernel's own fe80:: runs DAD, as it should
			t.Errorf("%s held back by duplicate address detection", p)
		}
	}
	checkClass(t, "DelAddr", l.DelAddr("veth0", vip), "ok")
	got, err = l.Addrs("veth0")
	must(t, err)
	if diff := cmp.Diff([]string{"2001:db8::1/64"}, prefixStrings(got)); diff != "" {
		t.Errorf("Addrs(veth0) after DelAddr (-want +got):\n%s", diff)
	}
}
