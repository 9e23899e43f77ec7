// Package zonetest checks with real packets, for every rules backend, what a realserver does
// with connections to a VIP from inside its zone (its own processes and its pods) and from the
// director: the seam is netops.LocalService, so one harness serves every backend.
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

// backend programs a node's rules for svcs in the network namespace named netns (one call per
// test, on a namespace without ravel's rules), failing or skipping t itself.
type backend struct {
	name  string
	apply func(t testing.TB, netns string, svcs []netops.LocalService)
}

// backends are every rules backend the test runs against.
var backends = []backend{
	iptablesBackend("nft"),
	iptablesBackend("legacy"),
	nftablesBackend(),
}

// prefix is ravel's chain prefix on the node.
const prefix = "RAVEL"

// directorInterfaces are where the director's traffic reaches nodeA: vd (the client's link,
// standing in for node.interface) and the IPIP tunnel device.
var directorInterfaces = []string{"vd", "tunl0"}

// iptablesBackend renders the chains and applies them with iptables.Real in mode ("nft" or
// "legacy"), skipping when that backend's tools are not installed.
func iptablesBackend(mode string) backend {
	return backend{name: "iptables-" + mode, apply: func(t testing.TB, netns string, svcs []netops.LocalService) {
		t.Helper()
		if _, err := exec.LookPath("iptables-" + mode); err != nil {
			t.Skipf("skipped: iptables-%s is not installed", mode)
		}
		r, err := iptables.New(prefix, iptables.WithNetns(netns), iptables.WithMode(mode))
		if err != nil {
			t.Fatal(err)
		}
		rs := chains.Render(chains.Options{Chain: prefix, DirectorInterfaces: directorInterfaces, Family: family.IPv4}, svcs)
		if _, err := r.Apply(context.Background(), rs); err != nil {
			t.Fatalf("apply:\n%s\n%v", rs, err)
		}
	}}
}

// nftablesBackend applies ravel's nftables table, skipping when nft is not installed.
func nftablesBackend() backend {
	return backend{name: "nftables", apply: func(t testing.TB, netns string, svcs []netops.LocalService) {
		t.Helper()
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("skipped: nft is not installed")
		}
		tb, err := nftables.New("", nftables.WithNetns(netns))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tb.Apply(context.Background(), nftables.Options{DirectorInterfaces: directorInterfaces}, svcs); err != nil {
			t.Fatal(err)
		}
	}}
}

// The topology, in namespaces made by the test (addresses from 198.18.0.0/15, set aside for
// such tests; nothing leaves the namespaces):
//
//	client 198.18.30.2 ──vd── 198.18.30.1
//	(the director: DR,        nodeA 198.18.10.1 ──veth── 198.18.10.2 nodeB   :9100 "static"
//	 VIP packets via A)       │ 198.18.11.1                198.18.21.1 │
//	                          podA 198.18.11.2 :9000        podB 198.18.21.2 :9000
//
// Both nodes bind every VIP on lo (198.19.0.10-12/32, as every realserver does) and forward;
// each routes the other's pod network through it; pods default-route through their node. Only
// nodeA has ravel's rules:
//
//	198.19.0.10:8080  no local endpoint, Zone [podB:9000]              (endpoint on another node)
//	198.19.0.11:8080  Endpoints [podA:9000]                             (local)
//	198.19.0.12:8080  no local endpoint, Zone [nodeB:9100], masquerade (a static backend)
type topo struct {
	client, nodeA, nodeB, podA, podB string
}

const (
	vipRemote = "198.19.0.10"
	vipLocal  = "198.19.0.11"
	vipStatic = "198.19.0.12"
	vipPort   = 8080
)

func setupTopo(t *testing.T) topo {
	t.Helper()
	tp := topo{client: netnstest.New(t), nodeA: netnstest.New(t), nodeB: netnstest.New(t), podA: netnstest.New(t), podB: netnstest.New(t)}
	for _, ns := range []string{tp.client, tp.nodeA, tp.nodeB, tp.podA, tp.podB} {
		netnstest.Up(t, ns, "lo")
	}
	netnstest.Veth(t, tp.nodeA, "vb", tp.nodeB, "va")
	netnstest.Addr(t, tp.nodeA, "vb", "198.18.10.1/24")
	netnstest.Addr(t, tp.nodeB, "va", "198.18.10.2/24")
	netnstest.Veth(t, tp.nodeA, "vp", tp.podA, "eth0")
	netnstest.Addr(t, tp.nodeA, "vp", "198.18.11.1/24")
	netnstest.Addr(t, tp.podA, "eth0", "198.18.11.2/24")
	netnstest.Veth(t, tp.nodeB, "vp", tp.podB, "eth0")
	netnstest.Addr(t, tp.nodeB, "vp", "198.18.21.1/24")
	netnstest.Addr(t, tp.podB, "eth0", "198.18.21.2/24")
	netnstest.Veth(t, tp.nodeA, "vd", tp.client, "eth0")
	netnstest.Addr(t, tp.nodeA, "vd", "198.18.30.1/24")
	netnstest.Addr(t, tp.client, "eth0", "198.18.30.2/24")

	netnstest.Route(t, tp.nodeA, "198.18.21.0/24", "198.18.10.2")
	netnstest.Route(t, tp.nodeB, "198.18.11.0/24", "198.18.10.1")
	netnstest.Route(t, tp.podA, "default", "198.18.11.1")
	netnstest.Route(t, tp.podB, "default", "198.18.21.1")
	for _, node := range []string{tp.nodeA, tp.nodeB} {
		netnstest.Sysctl(t, node, "net.ipv4.ip_forward=1")
	}
	for _, vip := range []string{vipRemote, vipLocal, vipStatic} {
		netnstest.Addr(t, tp.nodeA, "lo", vip+"/32")
		netnstest.Addr(t, tp.nodeB, "lo", vip+"/32")
		netnstest.Route(t, tp.client, vip+"/32", "198.18.30.1")
	}
	return tp
}

// zoneServices are nodeA's services (see topo).
func zoneServices() []netops.LocalService {
	key := func(vip string) netops.ServiceKey {
		return netops.ServiceKey{VIP: netip.MustParseAddr(vip), Port: vipPort, Proto: netops.TCP}
	}
	target := func(ap string) []netops.Target {
		return []netops.Target{{Addr: netip.MustParseAddrPort(ap), Weight: 1}}
	}
	return []netops.LocalService{
		{Name: "default/remote:http", Key: key(vipRemote), Probability: 1, Zone: target("198.18.21.2:9000")},
		{Name: "default/local:http", Key: key(vipLocal), Probability: 1, Endpoints: []netip.AddrPort{netip.MustParseAddrPort("198.18.11.2:9000")}},
		{Name: "default/static:http", Key: key(vipStatic), Probability: 1, Zone: target("198.18.10.2:9100"), ZoneMasquerade: true},
	}
}

// kubeProxy stands in for kube-proxy's nat rules on nodeA: they must stay byte-identical.
const kubeProxy = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n" +
	"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
	"-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
	"-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment \"default/kubernetes:https cluster IP\" -m tcp --dport 443 -j KUBE-SVC-X\n" +
	"-A KUBE-SVC-X -p tcp -j DNAT --to-destination 198.18.10.2:6443\nCOMMIT\n"

// iptablesModes are the iptables backends installed here: kube-proxy's rules go into each, so
// that they are checked whichever backend ravel writes.
func iptablesModes() []string {
	var modes []string
	for _, m := range []string{"nft", "legacy"} {
		if _, err := exec.LookPath("iptables-" + m + "-restore"); err == nil {
			modes = append(modes, m)
		}
	}
	return modes
}

// foreign is the nat table of `iptables-<mode>-save` in ns without ravel's lines (its chains
// and the jumps into them), the "# Generated" comments (they carry the time) and the built-in
// chains' declarations (their counters move with every packet).
func foreign(t *testing.T, ns, mode string) string {
	t.Helper()
	save, err := netnstest.Exec(ns, "", "iptables-"+mode+"-save", "-t", "nat")
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
func TestZone(t *testing.T) {
	netnstest.Require(t, "real-kernel zone tests")
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tp := setupTopo(t)
			netnstest.Serve(t, tp.podA, ":9000", "podA")
			netnstest.Serve(t, tp.podB, ":9000", "podB")
			netnstest.Serve(t, tp.nodeB, "198.18.10.2:9100", "static")

			kube := map[string]string{}
			for _, m := range iptablesModes() {
				if _, err := netnstest.Exec(tp.nodeA, kubeProxy, "iptables-"+m+"-restore", "--noflush"); err != nil {
					t.Fatal(err)
				}
				kube[m] = foreign(t, tp.nodeA, m)
				if !strings.Contains(kube[m], "-A KUBE-SVC-X ") {
					t.Fatalf("kube-proxy's rules are not in iptables-%s-save:\n%s", m, kube[m])
				}
			}

			b.apply(t, tp.nodeA, zoneServices())

			const n = 5
			for _, tt := range []struct {
				name string
				from string
				vip  string
				want string // "server source-seen", "" for refused
				why  string
			}{
				{"pod to a service with its endpoint on another node", tp.podA, vipRemote, "podB 198.18.11.2",
					"pod addresses route inside the cluster: not masqueraded"},
				{"node to a service with its endpoint on another node", tp.nodeA, vipRemote, "podB 198.18.10.1",
					"the node's source is the VIP, bound on nodeB too: masqueraded"},
				{"pod to its own service", tp.podA, vipLocal, "podA 198.18.11.1",
					"hairpin: DNATed to itself, masqueraded or its reply never un-NATs"},
				{"node to a local endpoint", tp.nodeA, vipLocal, "podA " + vipLocal,
					"the reply comes back through nodeA, which undoes the DNAT"},
				{"director to a local endpoint", tp.client, vipLocal, "podA 198.18.30.2",
					"the client's address is kept"},
				{"director to a service without local endpoints", tp.client, vipRemote, "",
					"never the zone: the node's own socket on the VIP refuses"},
				{"pod to a static backend", tp.podA, vipStatic, "static 198.18.10.1",
					"ZoneMasquerade: the backend cannot route back to pods"},
				{"node to a static backend", tp.nodeA, vipStatic, "static 198.18.10.1",
					"the node's source is the VIP: masqueraded"},
				{"director to a static backend", tp.client, vipStatic, "",
					"never the zone"},
			} {
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
				if after := foreign(t, tp.nodeA, m); after != before {
					t.Errorf("kube-proxy's rules in iptables-%s changed:\nbefore:\n%s\nafter:\n%s", m, before, after)
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
