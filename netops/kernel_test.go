package netops

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
)

// Real-kernel tests. They need IPVS, dummy and ipip, which only the QEMU guest has on these
// machines (test/e2e/scenarios/10-netops-kernel.sh runs them there); elsewhere they skip.
// Every test works in throwaway network namespaces.

func TestKernelConformanceIPVS(t *testing.T) {
	requireKernelIPVS(t)
	conformanceIPVS(t, func(t *testing.T) IPVS { return newTestNetns(t, true).ipvs(t) })
}

func TestKernelConformanceLinks(t *testing.T) {
	requireKernelIPVS(t)
	conformanceLinks(t, func(t *testing.T) linksEnv {
		n := newTestNetns(t, false)
		n.addForeignDummy(t, "foreign0", foreignAddr.String())
		l := n.links(t)
		return linksEnv{links: l, up: n.linkUp, kind: n.linkKind, hwaddr: l.HardwareAddr, unusable: n.unusable}
	})
}

func TestKernelSysctl(t *testing.T) {
	requireKernelIPVS(t)
	n := newTestNetns(t, false)
	n.run(t, func() {
		s := NewSysctl("")
		// The IPVS keys are per-namespace with fixed defaults; the conf/all and conf/default
		// keys and ip_forward inherit from the initial namespace, so they are only logged.
		for k, want := range fakeSysctlDefaults {
			got, err := s.Get(k)
			switch {
			case err != nil:
				t.Errorf("Get(%s): %v", k, err)
			case got != want && k != "net/ipv4/ip_forward":
				t.Errorf("fresh namespace: %s = %q, the fake says %q", k, got, want)
			case got != want:
				t.Logf("fresh namespace: %s = %q (inherited), the fake says %q", k, got, want)
			}
		}
		conformanceSysctl(t, s)
	})
}

// TestKernelIPVSStats opens a real connection through a NAT service inside a namespace and
// reads the destination's counters back.
func TestKernelIPVSStats(t *testing.T) {
	requireKernelIPVS(t)
	n := newTestNetns(t, true)
	k := n.ipvs(t)
	var ln net.Listener
	n.run(t, func() {
		var err error
		for _, a := range []string{"10.0.0.1/32", "10.0.1.5/32"} {
			if err = n.addAddr("lo", a); err != nil {
				t.Fatal(err)
			}
		}
		if ln, err = net.Listen("tcp4", "10.0.1.5:8080"); err != nil { // socket bound to the namespace
			t.Fatal(err)
		}
	})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { b := make([]byte, 1); c.Read(b); c.Close() }()
		}
	}()
	key := makeKey("tcp 10.0.0.1:80")
	must(t, k.AddService(Service{ServiceKey: key, Scheduler: "rr"}))
	must(t, k.AddDestination(key, makeDest("10.0.1.5:8080", withForward(ForwardNAT))))
	var c net.Conn
	n.run(t, func() {
		var err error
		if c, err = net.DialTimeout("tcp4", "10.0.0.1:80", 10*time.Second); err != nil {
			t.Fatalf("dial the VIP: %v", err)
		}
	})
	waitStats(t, k, key, destKey("10.0.1.5:8080"), func(s DestStats) bool { return s.ActiveConns == 1 })
	c.Close()
	waitStats(t, k, key, destKey("10.0.1.5:8080"), func(s DestStats) bool { return s.ActiveConns == 0 && s.InactiveConns == 1 })
}

func waitStats(t *testing.T, k IPVS, key ServiceKey, d DestKey, ok func(DestStats) bool) {
	t.Helper()
	var s DestStats
	var err error
	for range 200 {
		if s, err = k.DestStats(key, d); err == nil && ok(s) {
			t.Logf("stats of %s: %+v", d, s)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("stats of %s: %+v, %v", d, s, err)
}

func (n *testNetns) addAddr(dev, cidr string) error {
	l, err := n.nl.LinkByName(dev)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetUp(l); err != nil {
		return err
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	return n.nl.AddrAdd(l, a)
}

func TestKernelNewIPVSInMissingNetns(t *testing.T) {
	requireKernelIPVS(t)
	if _, err := NewIPVSInNetns("/nonexistent/netns"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NewIPVSInNetns(missing path): %v", err)
	}
}

// TestKernelQuirks pins, with moby/ipvs used directly, the kernel and library behaviour that
// ipvs.go works around; each subtest fails if the behaviour changes, so that the workaround
// can be revisited.
func TestKernelQuirks(t *testing.T) {
	requireKernelIPVS(t)
	raw := func(t *testing.T, n *testNetns) *ipvs.Handle {
		h, err := ipvs.New(n.path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		return h
	}
	svc := toIPVSService(makeService(vs, withSched("sh"), withFlags(FlagSched1)))
	dest := func(addr string, w int, upper, lower uint32) *ipvs.Destination {
		d := toIPVSDest(makeDest(addr, withWeight(w), withThresholds(upper, lower)))
		return d
	}
	errno := func(t *testing.T, what string, err error, want syscall.Errno) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %s (%d)", what, err, want.Error(), int(want))
		}
	}

	t.Run("service flags read back with IP_VS_SVC_F_HASHED", func(t *testing.T) {
		h := raw(t, newTestNetns(t, true))
		must(t, h.NewService(svc))
		got, err := h.GetServices()
		must(t, err)
		if len(got) != 1 || got[0].Flags != uint32(FlagSched1)|0x2 {
			t.Fatalf("flags read back: %+v, want 0x8|0x2", got)
		}
		t.Logf("set flags 0x8, GetServices says %#x; netmask %#x", got[0].Flags, got[0].Netmask)
	})

	t.Run("errnos", func(t *testing.T) {
		h := raw(t, newTestNetns(t, true))
		errno(t, "add destination to missing service", h.NewDestination(svc, dest("10.0.1.5:80", 1, 0, 0)), syscall.ESRCH)
		errno(t, "delete missing service", h.DelService(svc), syscall.ESRCH)
		bad := *svc
		bad.SchedName = "no-such-sched"
		errno(t, "unknown scheduler", h.NewService(&bad), syscall.ENOENT)
		must(t, h.NewService(svc))
		errno(t, "duplicate service", h.NewService(svc), syscall.EEXIST)
		errno(t, "weight -1", h.NewDestination(svc, dest("10.0.1.5:80", -1, 0, 0)), syscall.ERANGE)
		errno(t, "lower > upper", h.NewDestination(svc, dest("10.0.1.5:80", 1, 10, 20)), syscall.ERANGE)
		errno(t, "lower > upper = 0", h.NewDestination(svc, dest("10.0.1.5:80", 1, 0, 5)), syscall.ERANGE)
		errno(t, "multicast destination", h.NewDestination(svc, dest("224.0.0.1:80", 1, 0, 0)), syscall.EINVAL)
		errno(t, "delete missing destination", h.DelDestination(svc, dest("10.0.1.5:80", 1, 0, 0)), syscall.ENOENT)
		errno(t, "update missing destination", h.UpdateDestination(svc, dest("10.0.1.5:80", 1, 0, 0)), syscall.ENOENT)
		must(t, h.NewDestination(svc, dest("10.0.1.5:80", 1, 0, 0)))
		errno(t, "duplicate destination", h.NewDestination(svc, dest("10.0.1.5:80", 1, 0, 0)), syscall.EEXIST)
	})

	t.Run("a weight above 65535 is accepted and read back truncated", func(t *testing.T) {
		h := raw(t, newTestNetns(t, true))
		must(t, h.NewService(svc))
		must(t, h.NewDestination(svc, dest("10.0.1.5:80", 65536+7, 0, 0)))
		ds, err := h.GetDestinations(svc)
		must(t, err)
		if len(ds) != 1 || ds[0].Weight != 7 {
			t.Fatalf("weight 65543 read back as %+v, want 7 (u16)", ds)
		}
		d := ds[0]
		t.Logf("weight 65543 reads back as %d; connection flags %#x; address family %d; address %v (%d bytes)",
			d.Weight, d.ConnectionFlags, d.AddressFamily, d.Address, len(d.Address))
		if d.ConnectionFlags != ipvs.ConnectionFlagDirectRoute || d.AddressFamily != syscall.AF_INET {
			t.Errorf("connection flags %#x, family %d: want exactly 0x3 and AF_INET", d.ConnectionFlags, d.AddressFamily)
		}
	})

	t.Run("a dump of a missing service's destinations is empty, not an error", func(t *testing.T) {
		h := raw(t, newTestNetns(t, true))
		ds, err := h.GetDestinations(svc)
		if err != nil || len(ds) != 0 {
			t.Fatalf("GetDestinations(missing) = %v, %v; want empty, nil", ds, err)
		}
		_, err = h.GetService(svc)
		errno(t, "GetService(missing)", err, syscall.ESRCH)
	})

	t.Run("a fresh namespace with lo down refuses IPv4 destinations", func(t *testing.T) {
		h := raw(t, newTestNetns(t, false))
		must(t, h.NewService(svc))
		errno(t, "destination with lo down", h.NewDestination(svc, dest("10.0.1.5:80", 1, 0, 0)), syscall.EINVAL)
	})

	t.Run("a local destination", func(t *testing.T) {
		n := newTestNetns(t, true)
		h := raw(t, n)
		must(t, h.NewService(svc))
		must(t, h.NewDestination(svc, dest("127.0.0.1:80", 1, 0, 0)))
		ds, err := h.GetDestinations(svc)
		must(t, err)
		// Old kernels turned a local destination into IP_VS_CONN_F_LOCALNODE (1); 6.1 keeps
		// the method asked for.
		if ds[0].ConnectionFlags != ipvs.ConnectionFlagDirectRoute {
			t.Errorf("DR destination 127.0.0.1 reads back with connection flags %#x", ds[0].ConnectionFlags)
		}
	})

	t.Run("the netlink interface takes any protocol number", func(t *testing.T) {
		// checkServiceKey refuses all but tcp and udp before the kernel is asked.
		h := raw(t, newTestNetns(t, true))
		for _, p := range []uint16{132, 99} {
			s := *svc
			s.Protocol = p
			if err := h.NewService(&s); err != nil {
				t.Errorf("NewService protocol %d: %v", p, err)
			}
		}
	})

	t.Run("tunl0 in a fresh namespace", func(t *testing.T) {
		n := newTestNetns(t, false)
		_, modErr := os.Stat("/sys/module/ipip")
		t.Logf("ipip module loaded: %v; tunl0 before EnsureIPIP: kind %q up %v",
			modErr == nil, n.linkKind(t, "tunl0"), n.linkUp(t, "tunl0"))
		must(t, n.links(t).EnsureIPIP("tunl0"))
		if n.linkKind(t, "tunl0") != "ipip" || !n.linkUp(t, "tunl0") {
			t.Errorf("tunl0 after EnsureIPIP: kind %q up %v", n.linkKind(t, "tunl0"), n.linkUp(t, "tunl0"))
		}
	})

	t.Run("EnsureIPIP creates tunl0 where the ipip module made none", func(t *testing.T) {
		// With fb_tunnels_only_for_init_net=1 a new namespace gets no fallback tunl0, and
		// EnsureIPIP must create it. The knob is global (initial namespace): this test
		// goroutine's thread is there; restore it afterwards.
		const knob = "/proc/sys/net/core/fb_tunnels_only_for_init_net"
		old, err := os.ReadFile(knob)
		must(t, err)
		must(t, os.WriteFile(knob, []byte("1\n"), 0))
		t.Cleanup(func() { os.WriteFile(knob, old, 0) })
		n := newTestNetns(t, false)
		if kind := n.linkKind(t, "tunl0"); kind != "" {
			t.Fatalf("tunl0 exists (%s) in a new namespace with %s=1", kind, knob)
		}
		must(t, n.links(t).EnsureIPIP("tunl0"))
		if n.linkKind(t, "tunl0") != "ipip" || !n.linkUp(t, "tunl0") {
			t.Errorf("tunl0 after EnsureIPIP: kind %q up %v", n.linkKind(t, "tunl0"), n.linkUp(t, "tunl0"))
		}
		// A second catch-all ipip device is refused while tunl0 exists.
		err = n.links(t).EnsureIPIP("ravel-tun0")
		t.Logf("EnsureIPIP(ravel-tun0) beside tunl0: %v", err)
		checkClass(t, "EnsureIPIP(ravel-tun0)", err, "exist")
	})
}
