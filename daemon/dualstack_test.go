package daemon

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/reconcile"
)

// fakeAnswerer is a fakeAnnouncer that also answers solicitations (netops.Neighbours).
type fakeAnswerer struct {
	fakeAnnouncer
	mu     sync.Mutex
	served [][]netip.Addr // every Serve call
	count  uint64
}

func (a *fakeAnswerer) Serve(vips []netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.served = append(a.served, slices.Clone(vips))
	return nil
}

func (a *fakeAnswerer) Answered() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.count
}

// TestDirectorDualStack: one director programs an IPv4 and an IPv6 VIP side by side: IPv6
// services with IPv6 destinations (DR and NAT), the IPv6 VIP bound as a /128; it announces
// each VIP in its family's protocol (counted apart), has the IPv6 VIP's solicitations
// answered, and stops answering when the VIP goes.
func TestDirectorDualStack(t *testing.T) {
	f := newFakes()
	a := &fakeAnswerer{}
	d, _, m := newTestDirector(t, loadConfig(t, "director-dualstack.yaml"), f, a)
	d.FullSync()

	ipvs := f.ipvs.Dump()
	for _, want := range []string{
		"tcp [2001:db8:54::247]:80 wrr",
		"-> [2001:db8:1::5]:80 dr w=3",
		"-> [2001:db8:1::6]:80 dr w=1",
		"tcp [2001:db8:54::247]:443 wrr",
		"-> [2001:db8:1::7]:8443 nat w=1",
		"tcp 10.54.213.247:80 wrr",
		"-> 10.0.1.5:80 dr w=3",
	} {
		if !strings.Contains(ipvs, want) {
			t.Errorf("IPVS has no %q:\n%s", want, ipvs)
		}
	}
	links := f.links.Dump()
	for _, want := range []string{"2001:db8:54::247/128", "10.54.213.247/32"} {
		if !strings.Contains(links, want) {
			t.Errorf("ravel0 has no %s:\n%s", want, links)
		}
	}
	if got, want := a.take(), []string{"10.54.213.247", "2001:db8:54::247"}; !slices.Equal(got, want) {
		t.Errorf("announced %v, want %v", got, want)
	}
	if v4, v6 := value(t, m.GARPSent), value(t, m.NDPSent); v4 != 1 || v6 != 1 {
		t.Errorf("ravel_garp_sent_total = %v, ravel_ndp_advertisements_total = %v; want 1 and 1", v4, v6)
	}
	v6 := []netip.Addr{netip.MustParseAddr("2001:db8:54::247")}
	if len(a.served) != 1 || !slices.Equal(a.served[0], v6) {
		t.Fatalf("Serve calls %v, want one with %v", a.served, v6)
	}
	a.mu.Lock()
	a.count = 7
	a.mu.Unlock()
	d.FullSync() // the same VIPs: no new Serve, the answers counted
	if len(a.served) != 1 {
		t.Errorf("Serve called again with the same VIPs: %v", a.served)
	}
	if got := value(t, m.NDPAnswered); got != 7 {
		t.Errorf("ravel_ndp_solicitations_answered_total = %v, want 7", got)
	}

	// Without its IPv6 services the VIP is unbound (it stays in the pool): no more answers.
	cfg := loadConfigText(t, `apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director-1, role: director, interface: eth0, vipInterface: ravel0}
vipPool: [10.54.213.247, "2001:db8:54::247"]
services:
  - {name: web, vip: 10.54.213.247, port: 80, backends: [{address: 10.0.1.5, weight: 3}, {address: 10.0.1.6, weight: 1}]}
`)
	runDirector(t, d, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Reload(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	last := a.served[len(a.served)-1]
	a.mu.Unlock()
	if len(last) != 0 {
		t.Errorf("after the IPv6 services went, Serve(%v), want none", last)
	}
	if strings.Contains(f.links.Dump(), "2001:db8:54::247") {
		t.Errorf("the IPv6 VIP is still bound:\n%s", f.links.Dump())
	}
}

// TestDirectorColocatedIPv6: a colocated director's own pods take their share of an IPv6
// service in ip6tables (the IPv4 service's share stays in iptables), and its IPv6 IPVS
// service has the other nodes' IPv6 addresses as destinations, weighted by the IPv6 slices.
func TestDirectorColocatedIPv6(t *testing.T) {
	f := newFakes()
	cfg := loadConfigText(t, `apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director-1, role: director, interface: eth0, vipInterface: ravel0}
kubernetes: {}
vipPool: [10.54.213.247, "2001:db8:54::247"]
services:
  - {name: web, vip: 10.54.213.247, port: 80, kubernetes: {namespace: web, service: nginx, portName: http}}
  - {name: web6, vip: "2001:db8:54::247", port: 80, kubernetes: {namespace: web, service: nginx, portName: http}}
colocation: colocated
`)
	web6 := kube.ServiceRef{Namespace: "web", Service: "nginx", PortName: "http", Family: family.IPv6}
	snap := makeSnapshot(
		withNode("director-1", "10.1.0.10", withAddress6("2001:db8:1::10")), withNode("n1", "10.1.0.1", withAddress6("2001:db8:1::1")),
		withNode("n2", "10.1.0.2"), // no IPv6 address: never an IPv6 destination
		withEndpoints(webRef, ready("10.244.0.5", 8080, "director-1"), ready("10.244.1.5", 8080, "n1")),
		withEndpoints(web6, ready("fd00:244::5", 8080, "director-1"), ready("fd00:244:1::5", 8080, "n1"), ready("fd00:244:1::6", 8080, "n1")),
		withChanged(webRef, web6), withNodesChanged)
	d, _, _ := newTestDirector(t, cfg, f, nil)
	d.SetColocated(f.tables)
	t6 := iptables.NewFakeFamily("RAVEL", family.IPv6)
	d.SetColocated6(func() (iptables.Tables, error) { return t6, nil })
	d.OnSnapshot(snap)

	v6 := t6.Save()
	for _, want := range []string{
		"-A RAVEL -d 2001:db8:54::247/128 -p tcp -m comment --comment web6 -m tcp --dport 80 -m statistic --mode random --probability 0.33333333349",
		"-j DNAT --to-destination [fd00:244::5]:8080",
	} {
		if !strings.Contains(v6, want) {
			t.Errorf("ip6tables has no %q:\n%s", want, v6)
		}
	}
	if v4 := f.tables.Save(); !strings.Contains(v4, "--probability 0.50000000000") || strings.Contains(v4, "fd00") {
		t.Errorf("iptables: want the IPv4 share 1/2 and nothing of IPv6:\n%s", v4)
	}
	ipvs := f.ipvs.Dump()
	if !strings.Contains(ipvs, "tcp [2001:db8:54::247]:80 wrr flags=0x0\n  -> [2001:db8:1::1]:80 dr w=2 x=0 y=0\n") {
		t.Errorf("IPVS: want the IPv6 service with n1's IPv6 address at weight 2 only:\n%s", ipvs)
	}
}

// withAddress6 gives a node an IPv6 address.
func withAddress6(addr string) nodeOpt {
	return func(n *kube.Node) { n.Address6 = netip.MustParseAddr(addr) }
}

// TestChecksDualStackNodes: a dual-stack node is checked on each address a service sends it
// traffic on, and each check has series of its own.
func TestChecksDualStackNodes(t *testing.T) {
	cfg := loadConfigText(t, `apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director-1, role: director, interface: eth0, vipInterface: ravel0}
kubernetes: {}
vipPool: [10.54.213.247, "2001:db8:54::247"]
services:
  - {name: web, vip: 10.54.213.247, port: 80, kubernetes: {namespace: web, service: nginx, portName: http}}
  - {name: web6, vip: "2001:db8:54::247", port: 80, kubernetes: {namespace: web, service: nginx, portName: http}}
`)
	snap := makeSnapshot(withNode("n1", "10.1.0.1", withAddress6("2001:db8:1::1")), withNode("n2", "10.1.0.2"))
	m := NewMetrics(prometheus.NewRegistry())
	c := NewChecks(m, 4)
	c.Sync(cfg, snap, reconcile.Node{Name: "director-1", Role: "director"})
	var addrs []string
	for a := range c.nodes {
		addrs = append(addrs, a.String())
	}
	slices.Sort(addrs)
	if want := []string{"10.1.0.1", "10.1.0.2", "2001:db8:1::1"}; !slices.Equal(addrs, want) {
		t.Errorf("node checks on %v, want %v", addrs, want)
	}
	for _, label := range []string{"n1", "n1 (IPv6)", "n2"} {
		if got := value(t, m.BackendUp.WithLabelValues("*", label)); got != 1 {
			t.Errorf(`ravel_backend_up{service="*",backend=%q} = %v, want 1`, label, got)
		}
	}
}

// TestHealthAddrs: an empty health.listen host means node.interface's addresses, one per
// family (never a link-local one); a host names the only address, in its family's slot.
func TestHealthAddrs(t *testing.T) {
	ifAddrs := []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("10.0.0.5"),
		netip.MustParseAddr("2001:db8::5"), netip.MustParseAddr("10.0.0.6"), netip.MustParseAddr("2001:db8::6")}
	for _, tt := range []struct{ listen, v4, v6 string }{
		{":10236", "10.0.0.5:10236", "[2001:db8::5]:10236"},
		{"10.0.0.9:1", "10.0.0.9:1", "invalid AddrPort"},
		{"[2001:db8::9]:1", "invalid AddrPort", "[2001:db8::9]:1"},
	} {
		cfg := loadConfigText(t, "apiVersion: ravel/v1\nkind: ClusterConfig\nhealth: {listen: \""+tt.listen+"\"}\n")
		v4, v6 := HealthAddrs(cfg, ifAddrs)
		if v4.String() != tt.v4 || v6.String() != tt.v6 {
			t.Errorf("listen %q: %s and %s, want %s and %s", tt.listen, v4, v6, tt.v4, tt.v6)
		}
	}
	if v4, v6 := HealthAddrs(loadConfigText(t, "apiVersion: ravel/v1\nkind: ClusterConfig\n"), ifAddrs[:1]); v4.IsValid() || v6.IsValid() {
		t.Errorf("only a link-local address: %s and %s, want neither", v4, v6)
	}
}
