package reconcile

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/netops"
)

// zoneLines describes local services as "key -> endpoints | zone targets (masq)".
func zoneLines(svcs []netops.LocalService) []string {
	var out []string
	for _, s := range svcs {
		var b strings.Builder
		b.WriteString(s.Key.String())
		for _, e := range s.Endpoints {
			b.WriteString(" local " + e.String())
		}
		for _, z := range s.Zone {
			b.WriteString(" zone " + z.Addr.String())
			if z.Weight != 1 {
				b.WriteString("*" + strings.Repeat("I", z.Weight))
			}
		}
		if s.ZoneMasquerade {
			b.WriteString(" masq")
		}
		out = append(out, b.String())
	}
	return out
}

// TestLocalServicesZone: a realserver with no ready pod of a service serves it in-zone from the
// ready pods of the other eligible nodes (weight 1 each, never an unready pod or one on a
// node outside the selector); a static service from its backends by weight (weight 0 left
// out, port 0 the service's), masqueraded; nothing in-zone on a colocated director or with
// rules.inZone false.
func TestLocalServicesZone(t *testing.T) {
	web, api := ref("web", "nginx", "http"), ref("web", "api", "https")
	y := `kubernetes: {}
node: {name: n1, role: realserver, interface: eth0}
vipPool: [10.0.0.1, 10.0.0.2, 10.0.0.3]
services:
  - {name: web, vip: 10.0.0.1, port: 80, kubernetes: {namespace: web, service: nginx, portName: http}}
  - {name: api, vip: 10.0.0.2, port: 443, kubernetes: {namespace: web, service: api, portName: https}}
  - name: static
    vip: 10.0.0.3
    port: 53
    ipvs: {forwarding: nat}
    backends: [{address: 192.0.2.10, weight: 3}, {address: 192.0.2.11, port: 5353}, {address: 192.0.2.12, weight: 0}]
`
	snap := makeSnapshot(withNode("n1", "10.1.0.1"), withNode("n2", "10.1.0.2"), withNode("n3", "10.1.0.3", unselected()),
		withPods(web, "n1", 1, 0), withPods(web, "n2", 1, 0),
		withPods(api, "n2", 2, 1), withPods(api, "n3", 1, 0))
	node := Node{Name: "n1", Role: "realserver"}
	got := zoneLines(LocalServices(parseCfg(t, y), snap, node))
	want := []string{
		"tcp 10.0.0.1:80 local 10.244.0.0:8080",
		"tcp 10.0.0.2:443 zone 10.244.0.0:8080 zone 10.244.0.1:8080",
		"tcp 10.0.0.3:53 zone 192.0.2.10:53*III zone 192.0.2.11:5353 masq",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("realserver (-want +got):\n%s", d)
	}

	// The node is one of the static service's backends: its own socket serves in-zone.
	self := Node{Name: "n1", Role: "realserver", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.11")}}
	if d := cmp.Diff(want[:2], zoneLines(LocalServices(parseCfg(t, y), snap, self))); d != "" {
		t.Errorf("a static backend itself (-want +got):\n%s", d)
	}

	// Not eligible (outside the selector): nothing at all, in-zone clients included.
	out := makeSnapshot(withNode("n1", "10.1.0.1", unselected()), withNode("n2", "10.1.0.2"),
		withPods(web, "n2", 1, 0), withPods(api, "n2", 1, 0))
	if got := LocalServices(parseCfg(t, y), out, node); len(got) != 0 {
		t.Errorf("a node outside the selector serves %v", zoneLines(got))
	}

	// Without Kubernetes: the static service in-zone, and only with forwarding nat (a dr or
	// tunnel backend listens on the VIP, which a DNAT to its address would not reach).
	static := `node: {name: n1, role: realserver, interface: eth0}
vipPool: [10.0.0.3, 10.0.0.4]
services:
  - {name: nat, vip: 10.0.0.3, port: 53, ipvs: {forwarding: nat}, backends: [{address: 192.0.2.10}]}
  - {name: dr, vip: 10.0.0.4, port: 53, backends: [{address: 192.0.2.10}]}
`
	if d := cmp.Diff([]string{"tcp 10.0.0.3:53 zone 192.0.2.10:53 masq"}, zoneLines(LocalServices(parseCfg(t, static), nil, node))); d != "" {
		t.Errorf("static realserver (-want +got):\n%s", d)
	}

	off := parseCfg(t, y+"rules: {inZone: false}\n")
	if d := cmp.Diff(want[:1], zoneLines(LocalServices(off, snap, node))); d != "" {
		t.Errorf("rules.inZone false (-want +got):\n%s", d)
	}
	colo := parseCfg(t, strings.Replace(y, "role: realserver", "role: director", 1)+"colocation: colocated\n")
	for _, line := range zoneLines(LocalServices(colo, snap, Node{Name: "n1", Role: "director"})) {
		if strings.Contains(line, "zone") {
			t.Errorf("colocated director serves in-zone: %s", line)
		}
	}
}
