package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/internal/netnstest"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

// The packet tests send real TCP connections through ravel's chains, all inside namespaces the
// test makes (addresses from 198.18.0.0/15, the range set aside for such tests; nothing leaves
// the namespaces):
//
//	client 198.18.0.2 ──veth── 198.18.0.1 node ──veth── 198.18.1.1 | 198.18.1.2 pod1
//	       route VIP via node   VIP 198.19.0.10/32 on lo  ──veth── 198.18.2.1 | 198.18.2.2 pod2
//	                            ip_forward=1, RAVEL chains
//
// The client's route to the VIP through the node stands in for the director: in DR mode the
// node receives the packet addressed to the VIP exactly like this. The pods' TCP servers and
// the client are internal/netnstest's: goroutines whose sockets were opened on a thread inside
// their namespace (netops.InNetns), so no re-exec of the test binary is needed.

const (
	vip      = "198.19.0.10"
	vipPort  = 8080
	podPort  = 9000
	clientIP = "198.18.0.2"
	conns    = 200
)

type topo struct {
	client, node string
	pods         []string // namespaces pod1, pod2
}

func setupTopo(t *testing.T) topo {
	t.Helper()
	tp := topo{client: netnstest.New(t), node: netnstest.New(t), pods: []string{netnstest.New(t), netnstest.New(t)}}
	netnstest.Veth(t, tp.node, "vc", tp.client, "eth0")
	netnstest.Addr(t, tp.node, "vc", "198.18.0.1/24")
	netnstest.Addr(t, tp.client, "eth0", clientIP+"/24")
	for i, pod := range tp.pods {
		dev := fmt.Sprintf("vp%d", i+1)
		netnstest.Veth(t, tp.node, dev, pod, "eth0")
		netnstest.Addr(t, tp.node, dev, fmt.Sprintf("198.18.%d.1/24", i+1))
		netnstest.Addr(t, pod, "eth0", fmt.Sprintf("198.18.%d.2/24", i+1))
	}
	for _, ns := range append([]string{tp.client, tp.node}, tp.pods...) {
		netnstest.Up(t, ns, "lo")
	}
	netnstest.Addr(t, tp.node, "lo", vip+"/32")
	netnstest.Sysctl(t, tp.node, "net.ipv4.ip_forward=1")
	netnstest.Route(t, tp.client, vip+"/32", "198.18.0.1")
	for i, pod := range tp.pods {
		netnstest.Route(t, pod, "default", fmt.Sprintf("198.18.%d.1", i+1))
	}
	return tp
}

// hit makes n TCP connections to VIP:port from namespace ns and counts the answers, keyed by
// "name remote-ip".
func hit(t *testing.T, ns string, n int) map[string]int {
	t.Helper()
	return netnstest.Hit(t, ns, netip.AddrPortFrom(netip.MustParseAddr(vip), vipPort), n)
}

func packetRuleset(masq bool, probability float64) chains.Ruleset {
	return chains.Render(chains.Options{Chain: prefix, Masquerade: masq}, []netops.LocalService{{
		Name:        "default/web:http",
		Key:         makeService("", fmt.Sprintf("%s:%d", vip, vipPort)).Key,
		Endpoints:   []netip.AddrPort{netip.MustParseAddrPort("198.18.1.2:9000"), netip.MustParseAddrPort("198.18.2.2:9000")},
		Probability: probability,
	}})
}

func TestKernelPackets(t *testing.T) {
	needRoot(t)
	for _, mode := range []string{"nft", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			tp := setupTopo(t)
			for i, pod := range tp.pods {
				netnstest.Serve(t, pod, fmt.Sprintf(":%d", podPort), fmt.Sprintf("pod%d", i+1))
			}
			r, err := New(prefix, WithNetns(tp.node), WithMode(mode))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()

			// Masquerade off: the pods see the client's address, and share the connections.
			if _, err := r.Apply(ctx, packetRuleset(false, 1)); err != nil {
				t.Fatal(err)
			}
			got := hit(t, tp.client, conns)
			t.Logf("masquerade off: %v", got)
			for _, key := range []string{"pod1 " + clientIP, "pod2 " + clientIP} {
				if got[key] < conns/5 {
					t.Errorf("%q answered %d of %d connections, want at least 20%%", key, got[key], conns)
				}
			}
			if sum := got["pod1 "+clientIP] + got["pod2 "+clientIP]; sum != conns {
				t.Errorf("%d of %d connections reached a pod from the client's address: %v", sum, conns, got)
			}

			// Masquerade on: each pod sees the node's address on its own link.
			if _, err := r.Apply(ctx, packetRuleset(true, 1)); err != nil {
				t.Fatal(err)
			}
			got = hit(t, tp.client, conns)
			t.Logf("masquerade on: %v", got)
			if sum := got["pod1 198.18.1.1"] + got["pod2 198.18.2.1"]; sum != conns {
				t.Errorf("%d of %d connections reached a pod from the node's address: %v", sum, conns, got)
			}

			// A process on the node itself connecting to the VIP goes through OUTPUT: without
			// that jump it would reach the node's own (absent) listener on the VIP. Its source
			// address is the VIP (the local route's src); the pods' replies come back through
			// the node, where conntrack undoes the DNAT.
			if _, err := r.Apply(ctx, packetRuleset(false, 1)); err != nil {
				t.Fatal(err)
			}
			got = hit(t, tp.node, 20)
			t.Logf("from the node: %v", got)
			for key, n := range got {
				if !strings.HasPrefix(key, "pod") {
					t.Errorf("%d connections from the node answered by %q, want a pod", n, key)
				}
			}

			if err := r.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestKernelColocatedShare checks the colocated director's share with packets: a listener on
// the node's VIP stands in for IPVS (which this kernel lacks) and gets what the probability
// rule lets through; with 2 of 5 endpoints local, the pods take about 40%.
func TestKernelColocatedShare(t *testing.T) {
	needRoot(t)
	tp := setupTopo(t)
	for i, pod := range tp.pods {
		netnstest.Serve(t, pod, fmt.Sprintf(":%d", podPort), fmt.Sprintf("pod%d", i+1))
	}
	netnstest.Serve(t, tp.node, fmt.Sprintf("%s:%d", vip, vipPort), "ipvs-stand-in")
	r, err := New(prefix, WithNetns(tp.node))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(context.Background(), packetRuleset(false, 2.0/5)); err != nil {
		t.Fatal(err)
	}
	got := hit(t, tp.client, conns)
	t.Logf("colocated 2/5: %v", got)
	local := got["pod1 "+clientIP] + got["pod2 "+clientIP]
	// 200 draws at p=0.4: mean 80, sd 6.9; 50..110 is more than 4 sd either way.
	if local < 50 || local > 110 {
		t.Errorf("pods took %d of %d connections, want about 40%% (50..110)", local, conns)
	}
	if local+got["ipvs-stand-in "+clientIP] != conns {
		t.Errorf("connections lost or seen from another address: %v", got)
	}
}
