package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/netnstest"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

// The IPv6 packet test is TestKernelPackets on ip6tables' nat table, with the same shape of
// namespaces and addresses from fd00:198:18::/48 (unique local, nothing leaves the
// namespaces):
//
//	client fd00:198:18::2 ──veth── fd00:198:18::1 node ──veth── fd00:198:18:1::1 | ::2 pod1
//	       route VIP via node       VIP fd00:198:19::10/128 on lo ──veth── fd00:198:18:2::1 | ::2 pod2
//	                                forwarding=1, RAVEL chains in ip6tables
//
// Addresses are added with nodad (netnstest.Addr): duplicate address detection would keep them
// tentative (not usable as a source) for about a second after they are added.
const (
	vip6      = "fd00:198:19::10"
	client6IP = "fd00:198:18::2"
)

func setupTopo6(t *testing.T) topo {
	t.Helper()
	tp := topo{client: netnstest.New(t), node: netnstest.New(t), pods: []string{netnstest.New(t), netnstest.New(t)}}
	netnstest.Veth(t, tp.node, "vc", tp.client, "eth0")
	netnstest.Addr(t, tp.node, "vc", "fd00:198:18::1/64")
	netnstest.Addr(t, tp.client, "eth0", client6IP+"/64")
	for i, pod := range tp.pods {
		dev := fmt.Sprintf("vp%d", i+1)
		netnstest.Veth(t, tp.node, dev, pod, "eth0")
		netnstest.Addr(t, tp.node, dev, fmt.Sprintf("fd00:198:18:%d::1/64", i+1))
		netnstest.Addr(t, pod, "eth0", fmt.Sprintf("fd00:198:18:%d::2/64", i+1))
	}
	for _, ns := range append([]string{tp.client, tp.node}, tp.pods...) {
		netnstest.Up(t, ns, "lo")
	}
	netnstest.Addr(t, tp.node, "lo", vip6+"/128")
	netnstest.Sysctl(t, tp.node, "net.ipv6.conf.all.forwarding=1")
	netnstest.Route(t, tp.client, vip6+"/128", "fd00:198:18::1")
	for i, pod := range tp.pods {
		netnstest.Route(t, pod, "default", fmt.Sprintf("fd00:198:18:%d::1", i+1))
	}
	return tp
}

func packetRuleset6(masq bool) chains.Ruleset {
	return chains.Render(chains.Options{Chain: prefix, Masquerade: masq, Family: family.IPv6}, []netops.LocalService{{
		Name: "default/web:http",
		Key:  netops.ServiceKey{VIP: netip.MustParseAddr(vip6), Port: vipPort, Proto: netops.TCP},
		Endpoints: []netip.AddrPort{
			netip.MustParseAddrPort("[fd00:198:18:1::2]:9000"), netip.MustParseAddrPort("[fd00:198:18:2::2]:9000"),
			// an IPv4 endpoint of the same service belongs in iptables' table: left out here
			netip.MustParseAddrPort("198.18.1.2:9000"),
		},
		Probability: 1,
	}})
}

// kubeChains6 stands in for kube-proxy's ip6tables chains: they must stay byte-identical.
const kubeChains6 = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n" +
	"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
	"-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
	"-A KUBE-SERVICES -d fd00:96::1/128 -p tcp -m tcp --dport 443 -j KUBE-SVC-X\n" +
	"-A KUBE-SVC-X -p tcp -j DNAT --to-destination [fd00:198:18:1::2]:6443\nCOMMIT\n"

// TestKernelPacketsIPv6: real TCP through ravel's ip6tables chains reaches both pods, from the
// client's own address without masquerade and from the node's with it, from the node itself
// too; kube-proxy's chains beside them are byte-identical after every apply.
func TestKernelPacketsIPv6(t *testing.T) {
	needRoot(t)
	at := netip.AddrPortFrom(netip.MustParseAddr(vip6), vipPort)
	for _, mode := range []string{"nft", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			tp := setupTopo6(t)
			for i, pod := range tp.pods {
				netnstest.Serve(t, pod, fmt.Sprintf("[::]:%d", podPort), fmt.Sprintf("pod%d", i+1))
			}
			r, err := New(prefix, WithNetns(tp.node), WithMode(mode), WithFamily(family.IPv6))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := netnstest.Exec(tp.node, kubeChains6, r.restBin, "--noflush"); err != nil {
				t.Fatal(err)
			}
			save := func() string {
				out, err := netnstest.Exec(tp.node, "", r.saveBin, "-t", "nat")
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			foreign := mustForeign(save())
			ctx := context.Background()
			apply := func(rs chains.Ruleset) {
				t.Helper()
				if _, err := r.Apply(ctx, rs); err != nil {
					t.Fatal(err)
				}
				if f := mustForeign(save()); f != foreign {
					t.Fatalf("kube-proxy's chains changed:\nbefore:\n%s\nafter:\n%s", foreign, f)
				}
			}

			apply(packetRuleset6(false))
			got := netnstest.Hit(t, tp.client, at, conns)
			t.Logf("masquerade off: %v", got)
			for _, key := range []string{"pod1 " + client6IP, "pod2 " + client6IP} {
				if got[key] < conns/5 {
					t.Errorf("%q answered %d of %d connections, want at least 20%%", key, got[key], conns)
				}
			}
			if sum := got["pod1 "+client6IP] + got["pod2 "+client6IP]; sum != conns {
				t.Errorf("%d of %d connections reached a pod from the client's address: %v", sum, conns, got)
			}

			apply(packetRuleset6(true))
			got = netnstest.Hit(t, tp.client, at, conns)
			t.Logf("masquerade on: %v", got)
			if sum := got["pod1 fd00:198:18:1::1"] + got["pod2 fd00:198:18:2::1"]; sum != conns {
				t.Errorf("%d of %d connections reached a pod from the node's address: %v", sum, conns, got)
			}

			apply(packetRuleset6(false))
			got = netnstest.Hit(t, tp.node, at, 20)
			t.Logf("from the node: %v", got)
			if n := got["pod1 "+vip6] + got["pod2 "+vip6]; n != 20 {
				t.Errorf("%d of 20 connections from the node reached a pod (from the VIP): %v", n, got)
			}

			if err := r.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
			if s := save(); mustForeign(s) != foreign || mustOwned(s) != "" {
				t.Errorf("after Cleanup: owned %q, foreign changed: %v", mustOwned(s), mustForeign(s) != foreign)
			}
		})
	}
}
