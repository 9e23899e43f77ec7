package reconcile

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/netops"
)

func TestMachineRiseFall(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name       string
		rise, fall int
		results    string // u = pass, d = fail
		want       string // state after each result: U up, D down
	}{
		{"starts up, one failure is not enough", 2, 2, "du", "UU"},
		{"fall failures in a row take it down", 2, 2, "dd", "UD"},
		{"rise passes in a row bring it back", 2, 2, "dduu", "UDDU"},
		{"flapping never transitions", 2, 2, "dudududu", "UUUUUUUU"},
		{"a pass while down resets the rise count", 3, 1, "duududuuu", "DDDDDDDDU"},
		{"rise and fall of 0 count as 1", 0, 0, "dudu", "DUDU"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Machine
			got := ""
			for i, r := range tc.results {
				m.Observe(r == 'u', "refused", tc.rise, tc.fall, t0.Add(time.Duration(i)*time.Second))
				if m.Up() {
					got += "U"
				} else {
					got += "D"
				}
			}
			if got != tc.want {
				t.Errorf("states %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMachineSinceAndReason(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var m Machine
	if !m.Settled() || !m.Since().IsZero() {
		t.Fatal("a new machine is not settled and up since the start")
	}
	m.Observe(false, "refused", 2, 2, t0)
	if m.Settled() {
		t.Error("a pending failure reads as settled")
	}
	if changed := m.Observe(false, "timeout", 2, 2, t0.Add(time.Second)); !changed {
		t.Fatal("second failure did not report the transition")
	}
	if m.Reason() != "timeout" || !m.Since().Equal(t0.Add(time.Second)) {
		t.Errorf("down: reason %q since %v, want timeout since %v", m.Reason(), m.Since(), t0.Add(time.Second))
	}
	m.Observe(false, "status 500", 2, 2, t0.Add(2*time.Second))
	if m.Reason() != "status 500" || !m.Since().Equal(t0.Add(time.Second)) {
		t.Errorf("still down: reason %q since %v; the reason follows the last failure, since stays", m.Reason(), m.Since())
	}
	m.Observe(true, "", 2, 2, t0.Add(3*time.Second))
	m.Observe(true, "", 2, 2, t0.Add(4*time.Second))
	if !m.Up() || m.Reason() != "" || !m.Settled() {
		t.Errorf("after rise: up %v reason %q settled %v", m.Up(), m.Reason(), m.Settled())
	}
}

// fakeHealth answers from a table keyed by destination address; others are not checked.
type fakeHealth map[netip.Addr]Check

func (f fakeHealth) Check(_ netip.Addr, _ uint16, d netops.DestKey, _ bool) Check {
	return f[d.Addr]
}

func down(since time.Time) Check {
	return Check{Checked: true, DownSince: since, Hold: 5 * time.Second}
}

var upCheck = Check{Checked: true, Up: true}

// pending is an up destination whose last check failed (fall not reached yet).
var pending = Check{Checked: true, Up: true, Failing: true}

func parseCfg(t *testing.T, y string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte("apiVersion: ravel/v1\nkind: ClusterConfig\n"+y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func weights(st *State, key string) map[string]int {
	out := map[string]int{}
	vs := st.Services[skey(key)]
	if vs == nil {
		return nil
	}
	for k, d := range vs.Dests {
		out[netip.AddrPortFrom(k.Addr, k.Port).String()] = d.Weight
	}
	return out
}

const threeBackends = `vipPool: [10.0.0.1]
services:
  - name: web
    vip: 10.0.0.1
    port: 80
    healthCheck: {type: tcp}
    backends: [{address: 10.0.1.1, weight: 3}, {address: 10.0.1.2, weight: 2}, {address: 10.0.1.3}]
`

func TestDesiredHealthGates(t *testing.T) {
	t0 := time.Unix(5000, 0)
	a1, a2, a3 := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.0.1.3")
	sorry := threeBackends + "    sorryServer: {address: 10.0.2.9}\n"
	tests := []struct {
		name      string
		yaml      string
		health    fakeHealth
		want      map[string]int
		wantNotes []string
	}{
		{"nothing down: weights as configured", threeBackends, fakeHealth{a1: upCheck, a2: upCheck},
			map[string]int{"10.0.1.1:80": 3, "10.0.1.2:80": 2, "10.0.1.3:80": 1}, nil},
		{"a failing backend drains at weight 0; the others keep theirs", threeBackends, fakeHealth{a2: down(t0)},
			map[string]int{"10.0.1.1:80": 3, "10.0.1.2:80": 0, "10.0.1.3:80": 1}, nil},
		{"all failing together: the hold keeps every weight", threeBackends,
			fakeHealth{a1: down(t0), a2: down(t0.Add(time.Second)), a3: down(t0.Add(3 * time.Second))},
			map[string]int{"10.0.1.1:80": 3, "10.0.1.2:80": 2, "10.0.1.3:80": 1}, []string{"health-hold"}},
		{"one down, the others' last checks failed too: a cut-off director, held at once", threeBackends,
			fakeHealth{a1: down(t0), a2: pending, a3: pending},
			map[string]int{"10.0.1.1:80": 3, "10.0.1.2:80": 2, "10.0.1.3:80": 1}, []string{"health-hold"}},
		{"one down, one pending, one passing: no hold", threeBackends,
			fakeHealth{a1: down(t0), a2: pending, a3: upCheck},
			map[string]int{"10.0.1.1:80": 0, "10.0.1.2:80": 2, "10.0.1.3:80": 1}, nil},
		{"all failing: one that failed long before the others stays drained", threeBackends,
			fakeHealth{a1: down(t0.Add(-time.Hour)), a2: down(t0), a3: down(t0.Add(time.Second))},
			map[string]int{"10.0.1.1:80": 0, "10.0.1.2:80": 2, "10.0.1.3:80": 1}, []string{"health-hold"}},
		{"all failing with a sorry server: it takes the traffic, no hold", sorry,
			fakeHealth{a1: down(t0), a2: down(t0), a3: down(t0)},
			map[string]int{"10.0.1.1:80": 0, "10.0.1.2:80": 0, "10.0.1.3:80": 0, "10.0.2.9:80": 1}, nil},
		{"a sorry server is not used while one backend passes", sorry,
			fakeHealth{a1: down(t0), a2: down(t0)},
			map[string]int{"10.0.1.1:80": 0, "10.0.1.2:80": 0, "10.0.1.3:80": 1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, notes := DesiredChecked(parseCfg(t, tc.yaml), nil, director, tc.health)
			if d := cmp.Diff(tc.want, weights(st, "tcp 10.0.0.1:80")); d != "" {
				t.Errorf("weights (-want +got):\n%s", d)
			}
			var kinds []string
			for _, n := range notes {
				kinds = append(kinds, n.Kind)
			}
			if d := cmp.Diff(tc.wantNotes, kinds); d != "" {
				t.Errorf("notes (-want +got):\n%s", d)
			}
			if held := st.Services[skey("tcp 10.0.0.1:80")].Held; held != (len(tc.wantNotes) > 0) {
				t.Errorf("Held = %v, want it set exactly under the hold", held)
			}
		})
	}
}

func TestDesiredHealthKubernetesNodes(t *testing.T) {
	cfg := parseCfg(t, `kubernetes: {}
vipPool: [10.0.0.1]
services:
  - {vip: 10.0.0.1, port: 80, kubernetes: {namespace: web, service: nginx}}
`)
	r := ref("web", "nginx", "")
	snap := makeSnapshot(withNode("n1", "10.1.0.1"), withNode("n2", "10.1.0.2"), withNode("n3", "10.1.0.3"),
		withPods(r, "n1", 2, 0), withPods(r, "n2", 1, 0))
	h := fakeHealth{netip.MustParseAddr("10.1.0.1"): down(time.Unix(1, 0)), netip.MustParseAddr("10.1.0.3"): down(time.Unix(1, 0))}
	st, notes := DesiredChecked(cfg, snap, director, h)
	// n3 has no pods: its weight is 0 anyway and does not count for the hold.
	want := map[string]int{"10.1.0.1:80": 0, "10.1.0.2:80": 1, "10.1.0.3:80": 0}
	if d := cmp.Diff(want, weights(st, "tcp 10.0.0.1:80")); d != "" {
		t.Errorf("weights (-want +got):\n%s", d)
	}
	if len(notes) != 0 {
		t.Errorf("notes %v, want none", notes)
	}
}

func TestManagementService(t *testing.T) {
	kubeCfg := parseCfg(t, `kubernetes: {}
vipPool: [10.0.0.1, 10.0.0.2]
management: {port: 8080}
services:
  - {vip: 10.0.0.1, port: 80, kubernetes: {namespace: web, service: nginx}}
`)
	snap := makeSnapshot(withNode("n1", "10.1.0.1"), withNode("n2", "10.1.0.2"), withNode("director-1", "10.1.0.9"))
	h := fakeHealth{netip.MustParseAddr("10.1.0.2"): down(time.Unix(1, 0))}
	st, _ := DesiredChecked(kubeCfg, snap, director, h)
	for _, vip := range []string{"10.0.0.1", "10.0.0.2"} {
		want := map[string]int{"10.1.0.1:8080": 1, "10.1.0.2:8080": 0}
		if d := cmp.Diff(want, weights(st, "tcp "+vip+":8080")); d != "" {
			t.Errorf("management on %s (-want +got):\n%s", vip, d)
		}
		if !st.VIPs[netip.MustParseAddr(vip)] {
			t.Errorf("VIP %s not bound", vip)
		}
	}

	rs := Node{Name: "n1", Role: "realserver", Health: netip.MustParseAddrPort("10.1.0.1:10236")}
	var got []string
	for _, s := range LocalServices(kubeCfg, snap, rs) {
		for _, e := range s.Endpoints {
			got = append(got, s.Key.String()+" -> "+e.String())
		}
	}
	want := []string{"tcp 10.0.0.1:8080 -> 10.1.0.1:10236", "tcp 10.0.0.2:8080 -> 10.1.0.1:10236"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("realserver local services (-want +got):\n%s", d)
	}
	if rst, _ := RealserverDesired(kubeCfg); !rst.VIPs[netip.MustParseAddr("10.0.0.2")] {
		t.Error("realserver does not bind 10.0.0.2, a pool VIP without services that the management port is on")
	}

	// An IPv6 VIP of the pool: its management service goes to the nodes' IPv6 addresses and,
	// on the realserver, to the health endpoint's IPv6 listener; a node without one serves
	// it nowhere rather than DNATing across families.
	dual := parseCfg(t, `kubernetes: {}
vipPool: [10.0.0.1, "2001:db8::100"]
management: {port: 8080}
services:
  - {vip: 10.0.0.1, port: 80, kubernetes: {namespace: web, service: nginx}}
`)
	snap6 := makeSnapshot(withNode("n1", "10.1.0.1"), withNode("n2", "10.1.0.2"))
	n1 := snap6.Nodes["n1"]
	n1.Address6 = netip.MustParseAddr("2001:db8:1::1")
	snap6.Nodes["n1"] = n1
	st, _ = Desired(dual, snap6, director)
	if d := cmp.Diff(map[string]int{"[2001:db8:1::1]:8080": 1}, weights(st, "tcp [2001:db8::100]:8080")); d != "" {
		t.Errorf("management on the IPv6 VIP (-want +got):\n%s", d)
	}
	local := func(n Node) []string {
		var out []string
		for _, s := range LocalServices(dual, snap6, n) {
			for _, e := range s.Endpoints {
				out = append(out, s.Key.String()+" -> "+e.String())
			}
		}
		return out
	}
	rs6 := rs
	rs6.Health6 = netip.MustParseAddrPort("[2001:db8:1::1]:10236")
	if d := cmp.Diff([]string{"tcp 10.0.0.1:8080 -> 10.1.0.1:10236", "tcp [2001:db8::100]:8080 -> [2001:db8:1::1]:10236"}, local(rs6)); d != "" {
		t.Errorf("dual-stack realserver (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"tcp 10.0.0.1:8080 -> 10.1.0.1:10236"}, local(rs)); d != "" {
		t.Errorf("realserver without an IPv6 health address (-want +got):\n%s", d)
	}

	static := parseCfg(t, `vipPool: [10.0.0.1, 10.0.0.2]
management: {port: 8080}
services:
  - {vip: 10.0.0.1, port: 80, backends: [{address: 10.0.1.1}]}
`)
	st, _ = Desired(static, nil, director)
	if len(st.Services) != 1 || !st.VIPs[netip.MustParseAddr("10.0.0.2")] || !DirectorAnswersManagement(static) {
		t.Errorf("static only: %d services (want 1: the director answers 8080 itself), VIPs %v", len(st.Services), st.VIPs)
	}
}
