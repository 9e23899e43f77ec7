package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/internal/golden"
	"github.com/ravel-lb/ravel/internal/netnstest"
	"github.com/ravel-lb/ravel/netops"
)

// The kernel tests program ravel's table in namespaces the test makes and send real TCP
// through it (addresses from 198.18.0.0/15, nothing leaves the namespaces):
//
//	client 198.18.0.2 ──veth── 198.18.0.1 node ──veth── 198.18.1.1 | 198.18.1.2 pod1 :9000
//	       route VIP via node   VIP 198.19.0.10/32 on lo  ──veth── 198.18.2.1 | 198.18.2.2 pod2 :9000
//	                            kube-proxy's nftables table and an iptables-nft nat table
//	                            that both DNAT VIP:8080 to pod1:9001 ("kube")
//
// The client's route to the VIP through the node stands in for the director (DR: the packet
// arrives addressed to the VIP).

const (
	vip      = "198.19.0.10"
	clientIP = "198.18.0.2"
	conns    = 200
)

var vipPort = netip.MustParseAddrPort(vip + ":8080")

type topo struct{ client, node string }

func requireNFT(t *testing.T) {
	t.Helper()
	netnstest.Require(t, "real-kernel nftables tests")
	netnstest.RequireTool(t, "nft", "nftables")
}

func setupTopo(t *testing.T) topo {
	t.Helper()
	tp := topo{client: netnstest.New(t), node: netnstest.New(t)}
	pods := []string{netnstest.New(t), netnstest.New(t)}
	netnstest.Veth(t, tp.node, "vc", tp.client, "eth0")
	netnstest.Addr(t, tp.node, "vc", "198.18.0.1/24")
	netnstest.Addr(t, tp.client, "eth0", clientIP+"/24")
	netnstest.Up(t, tp.client, "lo", "eth0")
	netnstest.Up(t, tp.node, "lo", "vc")
	for i, pod := range pods {
		dev := fmt.Sprintf("vp%d", i+1)
		netnstest.Veth(t, tp.node, dev, pod, "eth0")
		netnstest.Addr(t, tp.node, dev, fmt.Sprintf("198.18.%d.1/24", i+1))
		netnstest.Addr(t, pod, "eth0", fmt.Sprintf("198.18.%d.2/24", i+1))
		netnstest.Up(t, tp.node, dev)
		netnstest.Up(t, pod, "lo", "eth0")
		netnstest.Route(t, pod, "default", fmt.Sprintf("198.18.%d.1", i+1))
		netnstest.Serve(t, pod, ":9000", fmt.Sprintf("pod%d", i+1))
	}
	netnstest.Serve(t, pods[0], ":9001", "kube")
	netnstest.Addr(t, tp.node, "lo", vip+"/32")
	netnstest.Sysctl(t, tp.node, "net.ipv4.ip_forward=1")
	netnstest.Route(t, tp.client, vip+"/32", "198.18.0.1")
	// IPv6 on the same links (fd00:198:18::/48, nodad: usable at once): one inet table
	// serves both families.
	netnstest.Addr(t, tp.node, "vc", "fd00:198:18::1/64")
	netnstest.Addr(t, tp.client, "eth0", client6+"/64")
	for i, pod := range pods {
		netnstest.Addr(t, tp.node, fmt.Sprintf("vp%d", i+1), fmt.Sprintf("fd00:198:18:%d::1/64", i+1))
		netnstest.Addr(t, pod, "eth0", fmt.Sprintf("fd00:198:18:%d::2/64", i+1))
		netnstest.Route(t, pod, "default", fmt.Sprintf("fd00:198:18:%d::1", i+1))
	}
	netnstest.Addr(t, tp.node, "lo", vip6+"/128")
	netnstest.Sysctl(t, tp.node, "net.ipv6.conf.all.forwarding=1")
	netnstest.Route(t, tp.client, vip6+"/128", "fd00:198:18::1")
	return tp
}

const (
	vip6    = "fd00:198:19::10"
	client6 = "fd00:198:18::2"
)

// TestKernelPacketsDualStack: one Apply serves an IPv4 and an IPv6 VIP from the same inet
// table, each spread over both pods with the client's address kept.
func TestKernelPacketsDualStack(t *testing.T) {
	requireNFT(t)
	ctx := context.Background()
	tp := setupTopo(t)
	tb, err := New("", WithNetns(tp.node))
	if err != nil {
		t.Fatal(err)
	}
	v6 := podService("[fd00:198:18:1::2]:9000", "[fd00:198:18:2::2]:9000")
	v6.Key.VIP = netip.MustParseAddr(vip6)
	set := []netops.LocalService{podService("198.18.1.2:9000", "198.18.2.2:9000"), v6}
	if _, err := tb.Apply(ctx, Options{DirectorInterfaces: []string{"vc"}}, set); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ at, client string }{{vip, clientIP}, {vip6, client6}} {
		at := netip.AddrPortFrom(netip.MustParseAddr(tc.at), vipPort.Port())
		got := netnstest.Hit(t, tp.client, at, 100)
		p1, p2 := got["pod1 "+tc.client], got["pod2 "+tc.client]
		// binomial(100, 0.5): below 25 with odds under 1e-6
		if p1+p2 != 100 || p1 < 25 || p2 < 25 {
			t.Errorf("%s: %v, want both pods and the client's address", at, got)
		}
	}
}

// kubeProxyTable is a table like kube-proxy's nftables mode writes (its own name, family ip,
// chains at priority dstnat), taking the VIP to pod1:9001.
const kubeProxyTable = `table ip kube-proxy {
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 198.19.0.10 tcp dport 8080 dnat to 198.18.1.2:9001
	}
	chain nat-output {
		type nat hook output priority -100; policy accept;
		ip daddr 198.19.0.10 tcp dport 8080 dnat to 198.18.1.2:9001
	}
}
`

// iptablesNat is kube-proxy's iptables mode in the nf_tables backend, the same DNAT.
const iptablesNat = `*nat
:KUBE-SERVICES - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
-A KUBE-SERVICES -d 198.19.0.10/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.18.1.2:9001
COMMIT
`

// foreign returns what other programs have in the node's nf_tables: kube-proxy's table and
// iptables-nft's nat table.
func foreign(t *testing.T, ns string) string {
	t.Helper()
	kp, err := netnstest.Exec(ns, "", "nft", "list", "table", "ip", "kube-proxy")
	if err != nil {
		t.Fatal(err)
	}
	ipt, err := netnstest.Exec(ns, "", "iptables-nft-save", "-t", "nat")
	if err != nil {
		t.Fatal(err)
	}
	// iptables-save's header and counters carry the time and packet counts.
	ipt = regexp.MustCompile(`(?m)^#.*\n|\[\d+:\d+\]`).ReplaceAllString(ipt, "")
	return kp + ipt
}

func podService(eps ...string) netops.LocalService {
	s := netops.LocalService{Name: "default/web:http", Key: netops.ServiceKey{VIP: vipPort.Addr(), Port: vipPort.Port(), Proto: netops.TCP}, Probability: 1}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, netip.MustParseAddrPort(e))
	}
	return s
}

// TestKernelPackets: ravel's table takes the VIP before kube-proxy's nftables table and its
// iptables-nft chains (both DNAT the VIP elsewhere), spreads real connections over two pods
// with the client's address kept, follows a partial change, repairs a hand-deleted element
// on the resync, and never changes a byte of the other tables; after cleanup kube-proxy's
// rules take the VIP again.
func TestKernelPackets(t *testing.T) {
	requireNFT(t)
	if _, err := exec.LookPath("iptables-nft-restore"); err != nil {
		t.Skip("skipped: needs iptables-nft-restore")
	}
	ctx := context.Background()
	tp := setupTopo(t)
	if _, err := netnstest.Exec(tp.node, kubeProxyTable, "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if _, err := netnstest.Exec(tp.node, iptablesNat, "iptables-nft-restore", "--noflush"); err != nil {
		t.Fatal(err)
	}
	if got := netnstest.Hit(t, tp.client, vipPort, 5); got["kube "+clientIP] != 5 {
		t.Fatalf("before ravel: %v, want kube-proxy's rules to answer", got)
	}
	before := foreign(t, tp.node)
	checkForeign := func(after string) {
		t.Helper()
		if got := foreign(t, tp.node); got != before {
			t.Fatalf("other programs' tables changed %s:\n%s\nwas\n%s", after, got, before)
		}
	}

	tb, err := New("", WithNetns(tp.node))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{DirectorInterfaces: []string{"vc"}}
	if _, err := tb.Apply(ctx, opts, []netops.LocalService{podService("198.18.1.2:9000", "198.18.2.2:9000")}); err != nil {
		t.Fatal(err)
	}
	checkForeign("by the first apply")
	got := netnstest.Hit(t, tp.client, vipPort, conns)
	p1, p2 := got["pod1 "+clientIP], got["pod2 "+clientIP]
	// Each side's share is binomial(200, 0.5): below 60 happens with odds under 1e-8.
	if p1+p2 != conns || p1 < 60 || p2 < 60 {
		t.Fatalf("spread %v over %d connections, want both pods, client address kept, nothing to kube-proxy's target", got, conns)
	}
	t.Logf("spread: pod1 %d, pod2 %d of %d", p1, p2, conns)

	// pod2's endpoint goes: a partial transaction, then everything to pod1.
	c, err := tb.Apply(ctx, opts, []netops.LocalService{podService("198.18.1.2:9000")})
	if err != nil || c.Full {
		t.Fatalf("endpoint removal: %+v, %v (want a partial transaction)", c, err)
	}
	checkForeign("by a partial change")
	if got := netnstest.Hit(t, tp.client, vipPort, 20); got["pod1 "+clientIP] != 20 {
		t.Fatalf("after pod2 left: %v", got)
	}

	// Someone deletes the service's element: kube-proxy's rules take over until the resync.
	if _, err := netnstest.Exec(tp.node, "", "nft", "delete", "element", "inet", "ravel", "services4", "{ 198.19.0.10 . tcp . 8080 }"); err != nil {
		t.Fatal(err)
	}
	if got := netnstest.Hit(t, tp.client, vipPort, 5); got["kube "+clientIP] != 5 {
		t.Fatalf("after the element went: %v", got)
	}
	d, c, err := tb.Resync(ctx, opts, []netops.LocalService{podService("198.18.1.2:9000")})
	if err != nil || !c.Full {
		t.Fatalf("resync: %+v, %v", c, err)
	}
	if len(d.Elements) != 1 || d.Elements[0] != "services4 198.19.0.10 . tcp . 8080" {
		t.Errorf("drift %+v, want the deleted element", d)
	}
	checkForeign("by the resync")
	if got := netnstest.Hit(t, tp.client, vipPort, 10); got["pod1 "+clientIP] != 10 {
		t.Fatalf("after the resync: %v", got)
	}

	// Masquerade: the pod sees the node's address on its side.
	if _, err := tb.Apply(ctx, Options{Masquerade: true, DirectorInterfaces: []string{"vc"}}, []netops.LocalService{podService("198.18.1.2:9000")}); err != nil {
		t.Fatal(err)
	}
	if got := netnstest.Hit(t, tp.client, vipPort, 10); got["pod1 198.18.1.1"] != 10 {
		t.Fatalf("with masquerade: %v, want pod1 to see 198.18.1.1", got)
	}

	if err := tb.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	checkForeign("by cleanup")
	if out, _ := netnstest.Exec(tp.node, "", "nft", "list", "tables"); strings.Contains(out, "inet ravel") {
		t.Fatalf("table left after cleanup: %s", out)
	}
	if got := netnstest.Hit(t, tp.client, vipPort, 5); got["kube "+clientIP] != 5 {
		t.Fatalf("after cleanup: %v, want kube-proxy's rules to answer again", got)
	}
}

// TestKernelTableGolden: the table nft lists back for the golden set (handles aside), and a
// second Apply of the same set sends nothing.
func TestKernelTableGolden(t *testing.T) {
	requireNFT(t)
	ctx := context.Background()
	ns := netnstest.New(t)
	tb, err := New("", WithNetns(ns))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Apply(ctx, testOpts, goldenSet()); err != nil {
		t.Fatal(err)
	}
	if c, err := tb.Apply(ctx, testOpts, goldenSet()); err != nil || !c.Empty() {
		t.Fatalf("second apply: %+v, %v", c, err)
	}
	d, err := tb.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "kernel-table", sortElements(d))
	if dr, _, err := tb.Resync(ctx, testOpts, goldenSet()); err != nil || !dr.Empty() {
		t.Fatalf("resync of an untouched table: drift %+v, %v", dr, err)
	}
}

// sortElements sorts the elements of every map in an nft listing, one per line: the kernel
// lists a hash map in its own order.
func sortElements(listing string) string {
	return regexp.MustCompile(`elements = \{([^}]*)\}`).ReplaceAllStringFunc(listing, func(m string) string {
		inner := strings.TrimSuffix(strings.TrimPrefix(m, "elements = {"), "}")
		var els []string
		for _, e := range strings.Split(inner, ",") {
			els = append(els, strings.TrimSpace(e))
		}
		slices.Sort(els)
		return "elements = {\n\t\t\t" + strings.Join(els, ",\n\t\t\t") + " }"
	})
}

// TestKernelColocatedShare: a colocated director's share (one local endpoint of three, the
// probability 1/3) takes a third of new connections; the draws above it match nothing and
// fall through to what comes after ravel's chains, here the node's own socket on the VIP
// standing in for IPVS.
func TestKernelColocatedShare(t *testing.T) {
	requireNFT(t)
	ctx := context.Background()
	tp := setupTopo(t)
	netnstest.Serve(t, tp.node, vipPort.String(), "ipvs")
	tb, err := New("", WithNetns(tp.node))
	if err != nil {
		t.Fatal(err)
	}
	share := podService("198.18.1.2:9000")
	share.Probability = 1.0 / 3
	if _, err := tb.Apply(ctx, Options{DirectorInterfaces: []string{"vc"}}, []netops.LocalService{share}); err != nil {
		t.Fatal(err)
	}
	got := netnstest.Hit(t, tp.client, vipPort, 300)
	pod, rest := got["pod1 "+clientIP], got["ipvs "+clientIP]
	// binomial(300, 1/3): mean 100, standard deviation 8.2; 60..140 is ±4.9σ
	if pod+rest != 300 || pod < 60 || pod > 140 {
		t.Fatalf("%v: want about a third to the pod, the rest through to the VIP's socket", got)
	}
	t.Logf("share: pod %d, fell through %d of 300", pod, rest)
}
