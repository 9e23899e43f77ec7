package netops

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Helpers for the real-kernel tests: throwaway network namespaces.

// requireKernelIPVS skips unless the kernel has IPVS (the host of these machines has none;
// the QEMU guest has it).
func requireKernelIPVS(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Skip("kernel has no IPVS: run in the QEMU guest via make e2e")
	}
	if os.Geteuid() != 0 {
		t.Fatal("kernel tests need root (they create network namespaces)")
	}
}

// testNetns is a throwaway network namespace, gone when the test ends.
type testNetns struct {
	ns   netns.NsHandle
	path string          // for NewIPVSInNetns and NewLinksInNetns
	nl   *netlink.Handle // raw rtnetlink in the namespace, to arrange and inspect
}

// newTestNetns creates a network namespace on a throwaway thread: the goroutine locks its
// thread, unshares, and ends locked, so the Go runtime discards that thread instead of
// reusing it in the wrong namespace. The namespace lives while ns is open.
func newTestNetns(t testing.TB, loUp bool) *testNetns {
	t.Helper()
	var (
		ns  netns.NsHandle
		err error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked, on purpose
		ns, err = netns.New()
	}()
	<-done
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		t.Fatalf("netlink in the new namespace: %v", err)
	}
	t.Cleanup(func() { h.Close(); ns.Close() })
	n := &testNetns{ns: ns, path: fmt.Sprintf("/proc/self/fd/%d", int(ns)), nl: h}
	if loUp {
		// A fresh namespace has lo down and no local routing table yet: inet_addr_type then
		// calls every IPv4 address a broadcast one, and IPVS refuses destinations with EINVAL
		// (see TestKernelQuirks). Any real node has lo up.
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		if err != nil {
			t.Fatalf("set lo up: %v", err)
		}
	}
	return n
}

// run calls fn on the test's goroutine with its OS thread inside the namespace, for what
// follows the thread rather than a socket: /proc/sys/net and new sockets.
func (n *testNetns) run(t *testing.T, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current network namespace: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(n.ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter network namespace: %v", err)
	}
	defer func() {
		// If the way back fails the thread stays locked and dies with the goroutine.
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		} else {
			t.Errorf("leave network namespace: %v", err)
		}
	}()
	fn()
}

func (n *testNetns) ipvs(t *testing.T) *KernelIPVS {
	t.Helper()
	k, err := NewIPVSInNetns(n.path)
	if err != nil {
		t.Fatalf("NewIPVSInNetns: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func (n *testNetns) links(t *testing.T) *KernelLinks {
	t.Helper()
	l, err := NewLinksInNetns(n.path)
	if err != nil {
		t.Fatalf("NewLinksInNetns: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func (n *testNetns) linkUp(t *testing.T, dev string) bool {
	t.Helper()
	l, err := n.nl.LinkByName(dev)
	return err == nil && l.Attrs().Flags&unix.IFF_UP != 0
}

// unusable lists dev's IPv6 addresses that duplicate address detection holds back.
func (n *testNetns) unusable(t *testing.T, dev string) []netip.Prefix {
	t.Helper()
	l, err := n.nl.LinkByName(dev)
	if err != nil {
		t.Fatalf("%s: %v", dev, err)
	}
	as, err := n.nl.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		t.Fatalf("addresses of %s: %v", dev, err)
	}
	var out []netip.Prefix
	for _, a := range as {
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			ip, _ := netip.AddrFromSlice(a.IP)
			bits, _ := a.Mask.Size()
			out = append(out, netip.PrefixFrom(ip, bits))
		}
	}
	return out
}

func (n *testNetns) linkKind(t *testing.T, dev string) string {
	t.Helper()
	l, err := n.nl.LinkByName(dev)
	if err != nil {
		return ""
	}
	return l.Type()
}

// addForeignDummy creates a dummy device ravel does not own, up, with addresses.
func (n *testNetns) addForeignDummy(t *testing.T, name string, addrs ...string) {
	t.Helper()
	d := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := n.nl.LinkAdd(d); err != nil {
		t.Fatalf("create foreign %s: %v", name, err)
	}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err == nil {
			err = n.nl.AddrAdd(d, addr)
		}
		if err != nil {
			t.Fatalf("address %s on %s: %v", a, name, err)
		}
	}
	if err := n.nl.LinkSetUp(d); err != nil {
		t.Fatalf("set %s up: %v", name, err)
	}
}
