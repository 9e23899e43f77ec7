// Package zonetest checks with real packets, for every rules backend, what a realserver does
// with connections to a VIP from inside its zone (its own processes and its pods) and from the
// director: the seam is netops.LocalService, so one harness serves every backend, in both
// families (TestZone for IPv4, TestZoneIPv6 on the same topology with IPv6 addresses).
package zonetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/netnstest"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
	"github.com/ravel-lb/ravel/netops/nftables"
)

// backend programs a node's rules for svcs, in the family of p, in the network namespace named
// netns (one call per test, on a namespace without ravel's rules), failing or skipping t
// itself.
type backend struct {
	name  string
	apply func(t testing.TB, netns string, p plan, svcs []netops.LocalService)
}

// backends are every rules backend the test runs against.
var backends = []backend{
	iptablesBackend("nft"),
	iptablesBackend("legacy"),
	nftablesBackend(),
}

// prefix is ravel's chain prefix on the node.
const prefix = "RAVEL"

// iptablesBackend renders the chains of p's family and applies them with iptables.Real in mode
// ("nft" or "legacy") to iptables' or ip6tables' nat table, skipping when that backend's tools
// are not installed.
func iptablesBackend(mode string) backend {
	return backend{name: "iptables-" + mode, apply: func(t testing.TB, netns string, p plan, svcs []netops.LocalService) {
		t.Helper()
		if _, err := exec.LookPath(p.iptables + "-" + mode); err != nil {
			t.Skipf("skipped: %s-%s is not installed", p.iptables, mode)
		}
		r, err := iptables.New(prefix, iptables.WithNetns(netns), iptables.WithMode(mode), iptables.WithFamily(p.fam))
		if err != nil {
			t.Fatal(err)
		}
		rs := chains.Render(chains.Options{Chain: prefix, DirectorInterfaces: p.directorInterfaces(), Family: p.fam}, svcs)
		if _, err := r.Apply(context.Background(), rs); err != nil {
			t.Fatalf("apply:\n%s\n%v", rs, err)
		}
	}}
}

// nftablesBackend applies ravel's nftables table (one inet table, whatever the family),
// skipping when nft is not installed.
func nftablesBackend() backend {
	return backend{name: "nftables", apply: func(t testing.TB, netns string, p plan, svcs []netops.LocalService) {
		t.Helper()
		netnstest.RequireTool(t, "nft", "nftables")
		tb, err := nftables.New("", nftables.WithNetns(netns))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tb.Apply(context.Background(), nftables.Options{DirectorInterfaces: p.directorInterfaces()}, svcs); err != nil {
			t.Fatal(err)
		}
	}}
}

// The topology, in namespaces made by the test (IPv4 addresses from 198.18.0.0/15, set aside
// for such tests; IPv6 ones from fd00:198:18::/47, unique local; nothing leaves the
// namespaces):
//
//	client 198.18.30.2 ──vd── 198.18.30.1
//	(the director: DR,        nodeA 198.18.10.1 ──veth── 198.18.10.2 nodeB   :9100 "static"
//	 VIP packets via A)       │ 198.18.11.1                198.18.21.1 │
//	                          podA 198.18.11.2 :9000        podB 198.18.21.2 :9000
//
// and in IPv6 (all links /64; addresses added with nodad, usable at once):
//
//	client fd00:198:18:30::2 ──vd── fd00:198:18:30::1
//	                 nodeA fd00:198:18:10::1 ──veth── fd00:198:18:10::2 nodeB   :9100 "static"
//	                       │ fd00:198:18:11::1                fd00:198:18:21::1 │
//	                 podA fd00:198:18:11::2 :9000      podB fd00:198:18:21::2 :9000
//
// Both nodes bind every VIP on lo (198.19.0.10-12/32 or fd00:198:19::10-12/128, as every
// realserver does) and forward; each routes the other's pod network through it; pods
// default-route through their node. Only nodeA has ravel's rules:
//
//	VIP .10 / ::10 :8080  no local endpoint, Zone [podB:9000]              (endpoint on another node)
//	VIP .11 / ::11 :8080  Endpoints [podA:9000]                             (local)
//	VIP .12 / ::12 :8080  no local endpoint, Zone [nodeB:9100], masquerade (a static backend)
type topo struct {
	client, nodeA, nodeB, podA, podB string // the namespaces
}

// plan is the topology's addresses in one family, and what else differs with the family.
type plan struct {
	fam      family.Family
	bits     int    // the links' prefix length
	iptables string // the iptables tools of the family: "iptables" or "ip6tables"
	tunnel   string // the family's IPIP tunnel device, a director interface
	sysctl   string // what makes a node forward

	nodeA, nodeB                   string // on the link between the nodes: each is the other's gateway
	nodeAPod, podA                 string // on podA's link: nodeA's (podA's gateway) and podA's
	nodeBPod, podB                 string // on podB's link
	nodeAVD, client                string // on vd: nodeA's (the client's gateway to the VIPs) and the client's
	vipRemote, vipLocal, vipStatic string // on lo of both nodes (see topo)

	// kubeProxy stands in for kube-proxy's nat rules on nodeA: they must stay byte-identical.
	kubeProxy string
}

var (
	ipv4 = plan{
		fam: family.IPv4, bits: 24, iptables: "iptables", tunnel: "tunl0", sysctl: "net.ipv4.ip_forward=1",
		nodeA: "198.18.10.1", nodeB: "198.18.10.2",
		nodeAPod: "198.18.11.1", podA: "198.18.11.2",
		nodeBPod: "198.18.21.1", podB: "198.18.21.2",
		nodeAVD: "198.18.30.1", client: "198.18.30.2",
		vipRemote: "198.19.0.10", vipLocal: "198.19.0.11", vipStatic: "198.19.0.12",
		kubeProxy: kubeProxy("10.96.0.1/32", "198.18.10.2:6443"),
	}
	ipv6 = plan{
		fam: family.IPv6, bits: 64, iptables: "ip6tables", tunnel: "ip6tnl0", sysctl: "net.ipv6.conf.all.forwarding=1",
		nodeA: "fd00:198:18:10::1", nodeB: "fd00:198:18:10::2",
		nodeAPod: "fd00:198:18:11::1", podA: "fd00:198:18:11::2",
		nodeBPod: "fd00:198:18:21::1", podB: "fd00:198:18:21::2",
		nodeAVD: "fd00:198:18:30::1", client: "fd00:198:18:30::2",
		vipRemote: "fd00:198:19::10", vipLocal: "fd00:198:19::11", vipStatic: "fd00:198:19::12",
		kubeProxy: kubeProxy("fd00:96::1/128", "[fd00:198:18:10::2]:6443"),
	}
)

// kubeProxy is kube-proxy's nat rules for one service at clusterIP (a host prefix) that DNATs
// to endpoint.
func kubeProxy(clusterIP, endpoint string) string {
	return "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n" +
		"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
		"-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
		"-A KUBE-SERVICES -d " + clusterIP + " -p tcp -m comment --comment \"default/kubernetes:https cluster IP\" -m tcp --dport 443 -j KUBE-SVC-X\n" +
		"-A KUBE-SVC-X -p tcp -j DNAT --to-destination " + endpoint + "\nCOMMIT\n"
}

const vipPort = 8080

// directorInterfaces are where the director's traffic reaches nodeA: vd (the client's link,
// standing in for node.interface) and the family's IPIP tunnel device.
func (p plan) directorInterfaces() []string { return []string{"vd", p.tunnel} }

// on is addr with the links' prefix length ("198.18.10.1/24").
func (p plan) on(addr string) string {
	return netip.PrefixFrom(netip.MustParseAddr(addr), p.bits).String()
}

// subnet is the network of the link addr is on ("198.18.21.0/24").
func (p plan) subnet(addr string) string {
	return netip.PrefixFrom(netip.MustParseAddr(addr), p.bits).Masked().String()
}

// host is the prefix that holds addr alone ("198.19.0.10/32", "fd00:198:19::10/128").
func (p plan) host(addr string) string { return p.fam.Host(netip.MustParseAddr(addr)).String() }

// addrPort is addr:port as a listener or a target is written ("[fd00:198:18:10::2]:9100").
func addrPort(addr string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(addr), port)
}

func setupTopo(t *testing.T, p plan) topo {
	t.Helper()
	tp := topo{client: netnstest.New(t), nodeA: netnstest.New(t), nodeB: netnstest.New(t), podA: netnstest.New(t), podB: netnstest.New(t)}
	for _, ns := range []string{tp.client, tp.nodeA, tp.nodeB, tp.podA, tp.podB} {
		if p.fam == family.IPv6 {
			// No duplicate address detection for the links' own link-local addresses either
			// (netnstest.Addr adds ours with nodad). A node that forwards a packet, or sends
			// one whose source is not on the outgoing link (the VIP, on lo), solicits the next
			// hop from that link's link-local address, and sends no solicitation at all while
			// it is tentative (ndisc_solicit, ndisc_send_ns): the packet waits in the neighbour
			// queue for the next try, a second later. Without this the first connection of each
			// subtest took 2 s instead of a few ms, TCP's retransmissions hiding the cause.
			// ARP has no such wait, so IPv4 needs nothing. Set before the veths exist: a new
			// device takes the namespace's default.
			netnstest.Sysctl(t, ns, "net.ipv6.conf.default.accept_dad=0")
		}
		netnstest.Up(t, ns, "lo")
	}
	netnstest.Veth(t, tp.nodeA, "vb", tp.nodeB, "va")
	netnstest.Addr(t, tp.nodeA, "vb", p.on(p.nodeA))
	netnstest.Addr(t, tp.nodeB, "va", p.on(p.nodeB))
	netnstest.Veth(t, tp.nodeA, "vp", tp.podA, "eth0")
	netnstest.Addr(t, tp.nodeA, "vp", p.on(p.nodeAPod))
	netnstest.Addr(t, tp.podA, "eth0", p.on(p.podA))
	netnstest.Veth(t, tp.nodeB, "vp", tp.podB, "eth0")
	netnstest.Addr(t, tp.nodeB, "vp", p.on(p.nodeBPod))
	netnstest.Addr(t, tp.podB, "eth0", p.on(p.podB))
	netnstest.Veth(t, tp.nodeA, "vd", tp.client, "eth0")
	netnstest.Addr(t, tp.nodeA, "vd", p.on(p.nodeAVD))
	netnstest.Addr(t, tp.client, "eth0", p.on(p.client))

	netnstest.Route(t, tp.nodeA, p.subnet(p.podB), p.nodeB)
	netnstest.Route(t, tp.nodeB, p.subnet(p.podA), p.nodeA)
	netnstest.Route(t, tp.podA, "default", p.nodeAPod)
	netnstest.Route(t, tp.podB, "default", p.nodeBPod)
	for _, node := range []string{tp.nodeA, tp.nodeB} {
		netnstest.Sysctl(t, node, p.sysctl)
	}
	for _, vip := range []string{p.vipRemote, p.vipLocal, p.vipStatic} {
		netnstest.Addr(t, tp.nodeA, "lo", p.host(vip))
		netnstest.Addr(t, tp.nodeB, "lo", p.host(vip))
		netnstest.Route(t, tp.client, p.host(vip), p.nodeAVD)
	}
	return tp
}

// zoneServices are nodeA's services (see topo).
func zoneServices(p plan) []netops.LocalService {
	key := func(vip string) netops.ServiceKey {
		return netops.ServiceKey{VIP: netip.MustParseAddr(vip), Port: vipPort, Proto: netops.TCP}
	}
	target := func(ap netip.AddrPort) []netops.Target {
		return []netops.Target{{Addr: ap, Weight: 1}}
	}
	return []netops.LocalService{
		{Name: "default/remote:http", Key: key(p.vipRemote), Probability: 1, Zone: target(addrPort(p.podB, 9000))},
		{Name: "default/local:http", Key: key(p.vipLocal), Probability: 1, Endpoints: []netip.AddrPort{addrPort(p.podA, 9000)}},
		{Name: "default/static:http", Key: key(p.vipStatic), Probability: 1, Zone: target(addrPort(p.nodeB, 9100)), ZoneMasquerade: true},
	}
}

// zoneCase is a connection from one namespace to a VIP and what must answer it.
type zoneCase struct {
	name string
	from string // the namespace that connects
	vip  string
	want string // "server source-seen", "" for refused
	why  string
}

// zoneCases are the connections TestZone and TestZoneIPv6 make, with the answers they expect:
// the same in both families.
func zoneCases(tp topo, p plan) []zoneCase {
	// seen is an answer of server with the source address it saw, as netnstest.Dial keys it.
	seen := func(server, addr string) string { return server + " " + netip.MustParseAddr(addr).String() }
	return []zoneCase{
		{"pod to a service with its endpoint on another node", tp.podA, p.vipRemote, seen("podB", p.podA),
			"pod addresses route inside the cluster: not masqueraded"},
		{"node to a service with its endpoint on another node", tp.nodeA, p.vipRemote, seen("podB", p.nodeA),
			"the node's source is the VIP, bound on nodeB too: masqueraded"},
		{"pod to its own service", tp.podA, p.vipLocal, seen("podA", p.nodeAPod),
			"hairpin: DNATed to itself, masqueraded or its reply never un-NATs"},
		{"node to a local endpoint", tp.nodeA, p.vipLocal, seen("podA", p.vipLocal),
			"the reply comes back through nodeA, which undoes the DNAT"},
		{"director to a local endpoint", tp.client, p.vipLocal, seen("podA", p.client),
			"the client's address is kept"},
		{"director to a service without local endpoints", tp.client, p.vipRemote, "",
			"never the zone: the node's own socket on the VIP refuses"},
		{"pod to a static backend", tp.podA, p.vipStatic, seen("static", p.nodeA),
			"ZoneMasquerade: the backend cannot route back to pods"},
		{"node to a static backend", tp.nodeA, p.vipStatic, seen("static", p.nodeA),
			"the node's source is the VIP: masqueraded"},
		{"director to a static backend", tp.client, p.vipStatic, "",
			"never the zone"},
	}
}

// iptablesModes are the iptables backends of p's family installed here: kube-proxy's rules go
// into each, so that they are checked whichever backend ravel writes.
func iptablesModes(p plan) []string {
	var modes []string
	for _, m := range []string{"nft", "legacy"} {
		if _, err := exec.LookPath(p.iptables + "-" + m + "-restore"); err == nil {
			modes = append(modes, m)
		}
	}
	return modes
}

// foreign is the nat table of `iptables-<mode>-save` (ip6tables-... for IPv6) in ns without
// ravel's lines (its chains and the jumps into them), the "# Generated" comments (they carry
// the time) and the built-in chains' declarations (their counters move with every packet).
func foreign(t *testing.T, ns string, p plan, mode string) string {
	t.Helper()
	save, err := netnstest.Exec(ns, "", p.iptables+"-"+mode+"-save", "-t", "nat")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for line := range strings.Lines(save) {
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, ":"):
			name, policy, _ := strings.Cut(line[1:], " ")
			if chains.Owned(prefix, name) || !strings.HasPrefix(policy, "-") {
				continue
			}
		case strings.HasPrefix(line, "-A "):
			name, rule, _ := strings.Cut(strings.TrimSpace(line[3:]), " ")
			if chains.Owned(prefix, name) || chains.Owned(prefix, jumpTarget(rule)) {
				continue
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

// TestZone: from inside the zone (nodeA's processes, podA) every VIP is served, by the local
// pod or by the zone targets, masqueraded exactly where the reply could not come back
// otherwise; the director's traffic keeps going to local pods only, with the client's address;
// kube-proxy's rules are left alone.
func TestZone(t *testing.T) { testZone(t, ipv4) }

// TestZoneIPv6 is TestZone on the IPv6 topology: ip6tables' nat table for the iptables
// backends (kube-proxy's ip6tables rules left alone), the same inet table for nftables, and the
// same answers.
func TestZoneIPv6(t *testing.T) { testZone(t, ipv6) }

func testZone(t *testing.T, p plan) {
	netnstest.Require(t, "real-kernel zone tests")
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tp := setupTopo(t, p)
			// ":9000" listens on [::]:9000, for both families.
			netnstest.Serve(t, tp.podA, ":9000", "podA")
			netnstest.Serve(t, tp.podB, ":9000", "podB")
			netnstest.Serve(t, tp.nodeB, addrPort(p.nodeB, 9100).String(), "static")

			kube := map[string]string{}
			for _, m := range iptablesModes(p) {
				if _, err := netnstest.Exec(tp.nodeA, p.kubeProxy, p.iptables+"-"+m+"-restore", "--noflush"); err != nil {
					t.Fatal(err)
				}
				kube[m] = foreign(t, tp.nodeA, p, m)
				if !strings.Contains(kube[m], "-A KUBE-SVC-X ") {
					t.Fatalf("kube-proxy's rules are not in %s-%s-save:\n%s", p.iptables, m, kube[m])
				}
			}

			b.apply(t, tp.nodeA, p, zoneServices(p))

			const n = 5
			for _, tt := range zoneCases(tp, p) {
				at := netip.AddrPortFrom(netip.MustParseAddr(tt.vip), vipPort)
				got, err := netnstest.Dial(tt.from, at, n)
				switch {
				case tt.want == "" && !errors.Is(err, syscall.ECONNREFUSED):
					t.Errorf("%s (%s): %v, %v; want refused (%s)", tt.name, at, got, err, tt.why)
				case tt.want != "" && (err != nil || got[tt.want] != n):
					t.Errorf("%s (%s): %v, %v; want %d answers %q (%s)", tt.name, at, got, err, n, tt.want, tt.why)
				default:
					t.Logf("%s (%s): %v %v", tt.name, at, got, errText(err))
				}
			}

			for m, before := range kube {
				if after := foreign(t, tp.nodeA, p, m); after != before {
					t.Errorf("kube-proxy's rules in %s-%s changed:\nbefore:\n%s\nafter:\n%s", p.iptables, m, before, after)
				}
			}
		})
	}
}

// jumpTarget is the chain a rule jumps (-j) or goes (-g) to, "" if none.
func jumpTarget(rule string) string {
	args := chains.SplitRule(rule)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" || args[i] == "-g" {
			return args[i+1]
		}
	}
	return ""
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf("(%v)", err)
}
