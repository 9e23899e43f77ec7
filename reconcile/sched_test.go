package reconcile

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/schema"
)

// Every scheduler the config accepts, with one destination at weight 1 and one at weight 0
// (a node without ready pods): the weight-0 one must never make the kernel refuse a client.
// Measured on the kernel (test/e2e/scenarios/28-director-sched-weight0.sh): without a
// fallback sh and dh refuse the clients hashed to a weight-0 destination, mh those hashed to a
// drained one; the others skip weight 0 in their lookup.
func TestSchedZeroPolicy(t *testing.T) {
	type row struct {
		policy ZeroPolicy
		flags  netops.SchedFlags
		drain  bool
	}
	skip := row{ZeroPolicy{}, 0, true}
	want := map[string]row{
		"rr": skip, "wrr": skip, "lc": skip, "wlc": skip, "lblc": skip, "lblcr": skip,
		"sed": skip, "nq": skip, "fo": skip, "ovf": skip,
		"sh": {ZeroPolicy{Fallback: true, Omit: true}, netops.FlagSched1, true}, // sh-fallback
		"mh": {ZeroPolicy{Fallback: true}, netops.FlagSched1, true},             // mh-fallback
		"dh": {ZeroPolicy{Omit: true}, 0, false},
	}
	for _, s := range schema.Schedulers {
		w, ok := want[s]
		if !ok {
			t.Errorf("scheduler %s: not in this table; measure it on the kernel (e2e scenario 28) and add it", s)
			continue
		}
		t.Run(s, func(t *testing.T) {
			p := SchedZeroPolicy(s)
			if p != w.policy || p.CanDrain() != w.drain {
				t.Errorf("SchedZeroPolicy(%s) = %+v (CanDrain %v), want %+v (CanDrain %v)", s, p, p.CanDrain(), w.policy, w.drain)
			}
			cfg := makeConfig(t, withService("web", "10.0.0.1:80", withScheduler(s), withBackend("10.0.1.5", 1), withBackend("10.0.1.6", 0)))
			got, _ := Desired(cfg, nil, director)
			ds := []netops.Destination{dest("10.0.1.5:80", 1)}
			if !w.policy.Omit {
				ds = append(ds, dest("10.0.1.6:80", 0))
			}
			wantSt := makeState(withVS("tcp 10.0.0.1:80", named("web"), sched(s), flags(w.flags), dests(ds...)))
			if d := cmp.Diff(wantSt, got, cmpOpts); d != "" {
				t.Errorf("Desired (-want +got):\n%s", d)
			}
		})
	}
}

// A configured flag is kept beside the forced fallback; setting the fallback too changes nothing.
func TestSchedFallbackKeepsConfiguredFlags(t *testing.T) {
	for _, tt := range []struct {
		sched string
		flags []string
	}{
		{"sh", []string{"sh-port"}},
		{"sh", []string{"sh-fallback", "sh-port"}},
		{"mh", []string{"mh-port"}},
		{"mh", []string{"mh-fallback", "mh-port"}},
	} {
		cfg := makeConfig(t, withService("web", "10.0.0.1:80", withScheduler(tt.sched), withFlags(tt.flags...), withBackend("10.0.1.5", 1)))
		got, _ := Desired(cfg, nil, director)
		if f := got.Services[skey("tcp 10.0.0.1:80")].Flags; f != netops.FlagSched1|netops.FlagSched2 {
			t.Errorf("%s %v: flags %s, want %s", tt.sched, tt.flags, FlagNames(tt.sched, f), FlagNames(tt.sched, netops.FlagSched1|netops.FlagSched2))
		}
	}
}

// What a plan does with weight 0 under each kind of scheduler: sh and mh drain a leaving
// destination (weight 0, kept: the fallback skips it and its connections keep their
// destination); dh deletes it at once; a service programmed before the fallback was forced
// gets it in place.
func TestDiffZeroWeightBySched(t *testing.T) {
	web := "tcp 10.0.0.1:80"
	two := func(s string, f netops.SchedFlags, w0, w1 int) *State {
		return makeState(withVS(web, named("web"), sched(s), flags(f), dests(dest("10.0.1.5:80", w0), dest("10.0.1.6:80", w1))))
	}
	one := func(s string, f netops.SchedFlags) *State {
		return makeState(withVS(web, named("web"), sched(s), flags(f), dests(dest("10.0.1.5:80", 1))))
	}
	fb := netops.FlagSched1
	tests := []struct {
		name            string
		desired, actual *State
		want            []string
	}{
		{"sh: leaving destination drained", one("sh", fb), two("sh", fb, 1, 2),
			[]string{"~ drain destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 2 -> 0"}},
		{"mh: leaving destination drained", one("mh", fb), two("mh", fb, 1, 2),
			[]string{"~ drain destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 2 -> 0"}},
		{"mh: node without pods kept at weight 0", two("mh", fb, 1, 0), two("mh", fb, 1, 2),
			[]string{"~ update destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 2 -> 0"}},
		{"dh: leaving destination deleted at once", one("dh", 0), two("dh", 0, 1, 2),
			[]string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): dh cannot drain: weight 0 refuses its clients"}},
		{"dh: weight-0 destination found in the kernel deleted at once", one("dh", 0), two("dh", 0, 1, 0),
			[]string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): dh cannot drain: weight 0 refuses its clients"}},
		{"sh without its fallback (an older ravel): flag added in place, weight 0 drains out", one("sh", fb), two("sh", 0, 1, 0),
			[]string{"~ update service tcp 10.0.0.1:80 (web): flags none -> sh-fallback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Diff(tt.desired, tt.actual, diffOpts(nil))
			if d := cmp.Diff(tt.want, lines(p)); d != "" {
				t.Errorf("plan (-want +got):\n%s", d)
			}
		})
	}
}

// Under sh and dh a node that loses its last pod leaves the desired state, so the plan drains
// it (sh) or deletes it (dh).
func TestDesiredOmitsNodeWithoutPods(t *testing.T) {
	web := ref("default", "web", "http")
	snap := makeSnapshot(withNode("n1", "10.1.0.1"), withPods(web, "n1", 2, 0), withNode("n2", "10.1.0.2"), withPods(web, "n2", 0, 1))
	for _, s := range []string{"sh", "dh"} {
		cfg := makeConfig(t, withKubernetes(false), withService("web", "10.0.0.1:80", withKube("default", "web", "http"), withScheduler(s)))
		got, _ := Desired(cfg, snap, director)
		want := makeState(withVS("tcp 10.0.0.1:80", named("web"), sched(s), flags(serviceFlags(s, 0)), dests(dest("10.1.0.1:80", 2))))
		if d := cmp.Diff(want, got, cmpOpts); d != "" {
			t.Errorf("%s: Desired (-want +got):\n%s", s, d)
		}
	}
}
