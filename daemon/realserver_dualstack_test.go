package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops/iptables"
)

// TestRealserverDualStack: each family's VIP is bound (/32 and /128) and handed to this node's
// pods of its family, in its family's table (iptables, ip6tables), from the slices of its
// family; a node with fewer IPv6 pods gets exactly those. ip6tables is opened only once the
// pool has an IPv6 VIP, and its chains are removed when it no longer has.
func TestRealserverDualStack(t *testing.T) {
	f := newRealserverFakes(t, "eth0")
	web6 := kube.ServiceRef{Namespace: "web", Service: "nginx", PortName: "http", Family: family.IPv6}
	snap := makeSnapshot(
		withNode("rs-1", "10.1.0.1", withAddress6("2001:db8:1::1")), withNode("rs-2", "10.1.0.2", withAddress6("2001:db8:1::2")),
		withEndpoints(webRef, ready("10.244.1.5", 8080, "rs-1"), ready("10.244.1.6", 8080, "rs-1"), ready("10.244.2.5", 8080, "rs-2")),
		withEndpoints(web6, ready("fd00:244:1::5", 8080, "rs-1"), ready("fd00:244:2::5", 8080, "rs-2")),
		withChanged(webRef, web6), withNodesChanged)
	rs := newTestRealserver(t, "realserver-dualstack.yaml", f, snap)
	t6 := iptables.NewFakeFamily("RAVEL", family.IPv6)
	opened := 0
	rs.SetTables6(func() (iptables.Tables, error) { opened++; return t6, nil })
	if err := rs.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	links := f.links.Dump()
	for _, want := range []string{"10.54.213.247/32", "2001:db8:54::247/128"} {
		if !strings.Contains(links, want) {
			t.Errorf("no %s bound:\n%s", want, links)
		}
	}
	v4, v6 := f.tables.Save(), t6.Save()
	for _, want := range []string{"-d 10.54.213.247/32", "--to-destination 10.244.1.5:8080", "--to-destination 10.244.1.6:8080"} {
		if !strings.Contains(v4, want) {
			t.Errorf("iptables has no %q:\n%s", want, v4)
		}
	}
	if strings.Contains(v4, "fd00") || strings.Contains(v4, "2001:db8") {
		t.Errorf("IPv6 in iptables:\n%s", v4)
	}
	for _, want := range []string{"-d 2001:db8:54::247/128", "-j DNAT --to-destination [fd00:244:1::5]:8080"} {
		if !strings.Contains(v6, want) {
			t.Errorf("ip6tables has no %q:\n%s", want, v6)
		}
	}
	if strings.Contains(v6, "fd00:244:2::5") || strings.Contains(v6, "10.244") {
		t.Errorf("ip6tables has another node's pod or an IPv4 one:\n%s", v6)
	}
	if err := rs.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if opened != 1 {
		t.Errorf("ip6tables opened %d times, want once", opened)
	}

	// The pool loses its IPv6 VIP: ip6tables' chains go.
	rs.Reload(loadConfigText(t, `apiVersion: ravel/v1
kind: ClusterConfig
node: {name: rs-1, role: realserver, interface: eth0, vipInterface: ravel0}
kubernetes: {}
vipPool: [10.54.213.247]
services:
  - {name: web, vip: 10.54.213.247, port: 80, kubernetes: {namespace: web, service: nginx, portName: http}}
`))
	if err := rs.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := t6.Save(); strings.Contains(s, "RAVEL") {
		t.Errorf("ip6tables still has ravel's chains:\n%s", s)
	}
}

// loadConfigText parses text with the loader the daemon uses.
func loadConfigText(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("inline.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRealserverTunnelsPerFamily: a tunnelled IPv6 VIP needs ip6tnl0 (IPVS encapsulates an
// IPv6 service in IPv6), an IPv4 one tunl0 and its rp_filter; each only when some service of
// its family tunnels.
func TestRealserverTunnelsPerFamily(t *testing.T) {
	for _, tt := range []struct {
		name, vips, fwd4, fwd6 string
		want, notWant          []string
	}{
		{"IPv6 tunnel only", `[10.54.213.247, "2001:db8:54::247"]`, "dr", "tunnel",
			[]string{"ip6tnl0 ip6tnl up"}, []string{"tunl0 ipip", "conf/tunl0/rp_filter"}},
		{"both", `[10.54.213.247, "2001:db8:54::247"]`, "tunnel", "tunnel",
			[]string{"ip6tnl0 ip6tnl up", "tunl0 ipip up", "net/ipv4/conf/tunl0/rp_filter = 0"}, nil},
		{"IPv4 tunnel only", `[10.54.213.247, "2001:db8:54::247"]`, "tunnel", "dr",
			[]string{"tunl0 ipip up"}, []string{"ip6tnl0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newRealserverFakes(t, "eth0")
			cfg := loadConfigText(t, `apiVersion: ravel/v1
kind: ClusterConfig
node: {name: rs-1, role: realserver, interface: eth0, vipInterface: lo}
vipPool: `+tt.vips+`
services:
  - {name: web, vip: 10.54.213.247, port: 80, ipvs: {forwarding: `+tt.fwd4+`}, backends: [{address: 10.1.0.1}]}
  - {name: web6, vip: "2001:db8:54::247", port: 80, ipvs: {forwarding: `+tt.fwd6+`}, backends: [{address: "2001:db8:1::1"}]}
`)
			rs := NewRealserver(cfg, nodeOf(cfg), f.kernelLinks(), f.sysctl, f.tables, nil, discard, NewMetrics(nil))
			if err := rs.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			state := f.links.Dump() + f.sysctl.Dump()
			for _, w := range tt.want {
				if !strings.Contains(state, w) {
					t.Errorf("no %q in:\n%s", w, state)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(state, w) {
					t.Errorf("%q in:\n%s", w, state)
				}
			}
		})
	}
}
