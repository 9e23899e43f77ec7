package netops

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// The NDP tests run on the host's kernel, in two namespaces joined by a veth (addresses from
// 2001:db8::/32, the documentation range; nothing leaves the namespaces):
//
//	client 2001:db8:1::2 ndX ──veth── ndX 2001:db8:1::1 director
//	       route VIP on-link (solicits it)       VIP 2001:db8:9::10/128 on lo
//
// The VIP is on lo, standing in for ravel's dummy device (the host kernel has none): what
// matters is that it is not on the veth, where the solicitations arrive.

const ndpVIP = "2001:db8:9::10"

// ndpTopo names the two namespaces and the veth, whose two ends have one name.
//
// The name is new for each test because Go resolves an IPv6 zone (the interface name that
// github.com/mdlayher/ndp puts on every destination) through a process-wide cache of the
// interfaces of whichever namespace refreshed it last; a name found in no other namespace
// makes it refresh in the one the lookup runs in. A daemon lives in one namespace and never
// meets this.
type ndpTopo struct{ client, director, dev string }

func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func setupNDP(t *testing.T) ndpTopo {
	t.Helper()
	requireRoot(t)
	b := make([]byte, 4)
	rand.Read(b)
	tp := ndpTopo{client: "ravel-ndpc-" + hex.EncodeToString(b), director: "ravel-ndpd-" + hex.EncodeToString(b),
		dev: "nd" + hex.EncodeToString(b)}
	for _, ns := range []string{tp.client, tp.director} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		// No duplicate address detection on the link-local addresses either: they would be
		// tentative, unusable as a source, for about a second after the link comes up.
		for _, k := range []string{"all", "default"} {
			ipCmd(t, "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+k+".accept_dad=0")
		}
	}
	ipCmd(t, "link", "add", tp.dev, "netns", tp.client, "type", "veth", "peer", "name", tp.dev, "netns", tp.director)
	for _, ns := range []string{tp.client, tp.director} {
		// The veth was made in the test's namespace and moved: it keeps that one's settings.
		ipCmd(t, "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+tp.dev+".accept_dad=0")
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		ipCmd(t, "-n", ns, "link", "set", tp.dev, "up")
	}
	ipCmd(t, "-n", tp.client, "addr", "add", "2001:db8:1::2/64", "dev", tp.dev, "nodad")
	ipCmd(t, "-n", tp.director, "addr", "add", "2001:db8:1::1/64", "dev", tp.dev, "nodad")
	ipCmd(t, "-n", tp.director, "addr", "add", ndpVIP+"/128", "dev", "lo")
	ipCmd(t, "-n", tp.client, "-6", "route", "add", ndpVIP+"/128", "dev", tp.dev)
	return tp
}

// inNamedNetns runs fn with the goroutine's thread in namespace name: NDP's socket is made in
// the namespace of the thread that opens it.
func inNamedNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	n := &testNetns{ns: h}
	n.run(t, fn)
}

// directorMAC is the MAC address of the director's eth0.
func (tp ndpTopo) directorMAC(t *testing.T) string {
	var mac string
	inNamedNetns(t, tp.director, func() {
		ifi, err := net.InterfaceByName(tp.dev)
		if err != nil {
			t.Fatal(err)
		}
		mac = ifi.HardwareAddr.String()
	})
	return mac
}

// clientNeigh is the client's neighbour entry for the VIP: its link-layer address and state
// ("" when there is none).
func (tp ndpTopo) clientNeigh(t *testing.T) (lladdr, state string) {
	out := ipCmd(t, "-n", tp.client, "-6", "neigh", "show", ndpVIP, "dev", tp.dev)
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			lladdr = f[i+1]
		}
	}
	if len(f) > 0 {
		state = f[len(f)-1]
	}
	return lladdr, state
}

// ping makes one TCP connection from the client to the VIP, where the director listens (the
// host has no ping(8)): the client must resolve the VIP first. It gives up after a second.
func (tp ndpTopo) ping(t *testing.T) error {
	t.Helper()
	var ln net.Listener
	inNamedNetns(t, tp.director, func() {
		var err error
		if ln, err = net.Listen("tcp", "["+ndpVIP+"]:0"); err != nil {
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
			c.Close()
		}
	}()
	var err error
	inNamedNetns(t, tp.client, func() {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			c.Close()
		}
	})
	return err
}

func newNDPIn(t *testing.T, ns, dev string, gateway netip.Addr) *NDP {
	var n *NDP
	inNamedNetns(t, ns, func() {
		var err error
		if n, err = NewNDP(dev, gateway); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { n.Close() })
	return n
}

// TestNetnsNDPAnswers: the kernel does not answer a solicitation for a VIP that is not on the
// receiving interface, so the client cannot reach it; once NDP serves the VIP the client
// resolves it to the director's MAC and gets its answer; after Serve(nil) it is unanswered
// again.
func TestNetnsNDPAnswers(t *testing.T) {
	tp := setupNDP(t)
	mac := tp.directorMAC(t)
	if err := tp.ping(t); err == nil {
		t.Fatal("the VIP answered before NDP served it: the kernel resolved it by itself, the test shows nothing")
	}
	n := newNDPIn(t, tp.director, tp.dev, netip.Addr{})
	inNamedNetns(t, tp.director, func() {
		if err := n.Serve([]netip.Addr{netip.MustParseAddr(ndpVIP), netip.MustParseAddr("192.0.2.10")}); err != nil {
			t.Fatal(err)
		}
	})
	ipCmd(t, "-n", tp.client, "-6", "neigh", "flush", "dev", tp.dev)
	var err error
	for range 3 {
		if err = tp.ping(t); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("connect to the VIP with NDP serving it: %v", err)
	}
	if got, _ := tp.clientNeigh(t); got != mac {
		t.Errorf("client's entry for the VIP: lladdr %q, want the director's %s", got, mac)
	}
	if n.Stats().Answered == 0 {
		t.Error("Stats().Answered = 0 after an answered solicitation")
	}
	inNamedNetns(t, tp.director, func() {
		if err := n.Serve(nil); err != nil {
			t.Fatal(err)
		}
	})
	ipCmd(t, "-n", tp.client, "-6", "neigh", "flush", "dev", tp.dev)
	if err := tp.ping(t); err == nil {
		t.Error("the VIP still answered after Serve(nil)")
	}
}

// TestNetnsNDPAnnounces: an unsolicited advertisement overrides the client's entry for the
// VIP (a failover to this director); with a gateway, the gateway (here the client) learns the
// VIP from the director's solicitation even without an entry: learned passively, not
// resolved by the client.
func TestNetnsNDPAnnounces(t *testing.T) {
	tp := setupNDP(t)
	mac := tp.directorMAC(t)
	vip := netip.MustParseAddr(ndpVIP)

	n := newNDPIn(t, tp.director, tp.dev, netip.Addr{})
	ipCmd(t, "-n", tp.client, "-6", "neigh", "replace", ndpVIP, "lladdr", "02:00:00:00:00:01", "dev", tp.dev, "nud", "stale")
	inNamedNetns(t, tp.director, func() {
		if err := n.Announce(vip); err != nil {
			t.Fatal(err)
		}
	})
	if got := waitNeigh(t, tp, mac); got != mac {
		t.Errorf("after the advertisement the client's entry says %q, want the director's %s", got, mac)
	}
	if err := n.Announce(netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("Announce of an IPv4 address: no error")
	}

	ipCmd(t, "-n", tp.client, "-6", "neigh", "flush", "dev", tp.dev)
	gw := newNDPIn(t, tp.director, tp.dev, netip.MustParseAddr("2001:db8:1::2"))
	inNamedNetns(t, tp.director, func() {
		if err := gw.Announce(vip); err != nil {
			t.Fatal(err)
		}
	})
	if got := waitNeigh(t, tp, mac); got != mac {
		t.Fatalf("the gateway learned %q for the VIP, want the director's %s", got, mac)
	}
	// STALE: created by the solicitation; DELAY once the gateway's answer to the VIP used
	// it. An entry the client resolved itself would be REACHABLE.
	if _, state := tp.clientNeigh(t); state != "STALE" && state != "DELAY" {
		t.Errorf("the gateway's entry is %s, want STALE or DELAY (learned from the solicitation)", state)
	}
}

// waitNeigh waits up to a second for the client's entry for the VIP to say want.
func waitNeigh(t *testing.T, tp ndpTopo, want string) string {
	var got string
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, _ = tp.clientNeigh(t); got == want {
			break
		}
	}
	return got
}

// TestNetnsProxyNDPNeedsForwarding shows on the kernel why NDP answers solicitations itself
// rather than through proxy NDP entries: with an entry for the VIP on the interface and
// proxy_ndp=1, the kernel still does not answer while forwarding is off
// (net/ipv6/ndisc.c, ndisc_recv_ns), and turning forwarding on makes the director a router.
func TestNetnsProxyNDPNeedsForwarding(t *testing.T) {
	tp := setupNDP(t)
	ipCmd(t, "-n", tp.director, "-6", "neigh", "add", "proxy", ndpVIP, "dev", tp.dev)
	ipCmd(t, "netns", "exec", tp.director, "sysctl", "-qw", "net.ipv6.conf."+tp.dev+".proxy_ndp=1",
		"net.ipv6.neigh."+tp.dev+".proxy_delay=0")
	ipCmd(t, "-n", tp.client, "-6", "neigh", "flush", "dev", tp.dev)
	if err := tp.ping(t); err == nil {
		t.Fatal("a proxy entry was answered with forwarding off: NDP's reason to answer itself is gone")
	}
	ipCmd(t, "netns", "exec", tp.director, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	ipCmd(t, "-n", tp.client, "-6", "neigh", "flush", "dev", tp.dev)
	if err := tp.ping(t); err != nil {
		t.Fatalf("with forwarding on the proxy entry is still not answered (%v): the test shows nothing", err)
	}
}
