package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/netops"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// diffOpts are the options of a director owning 10.0.0.1-10.0.0.3 with a 30s drain timeout.
func diffOpts(drains map[DestRef]time.Time) DiffOptions {
	return DiffOptions{Now: t0, DrainTimeout: 30 * time.Second, Drains: drainsAt(drains), Owned: owned("10.0.0.1", "10.0.0.2", "10.0.0.3")}
}

// drainsAt returns Drains holding the drains of m, each started at its time.
func drainsAt(m map[DestRef]time.Time) *Drains {
	d := &Drains{}
	for ref, t := range m {
		d.Start(ref, t)
	}
	return d
}

func drainRef(svc, d string) DestRef { return DestRef{skey(svc), dkey(d)} }

func TestDiff(t *testing.T) {
	web := "tcp 10.0.0.1:80"
	base := func(extra ...stateOpt) *State {
		return makeState(append([]stateOpt{withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 1)))}, extra...)...)
	}
	tests := []struct {
		name       string
		desired    *State
		actual     *State
		drains     map[DestRef]time.Time
		want       []string
		wantDrains []DestRef
	}{
		{
			name:    "equal: no changes",
			desired: base(withSysctlValue("net/ipv4/vs/conntrack", "1")),
			actual:  base(withSysctlValue("net/ipv4/vs/conntrack", "1")),
		},
		{
			name:    "from empty: services before their destinations, ensure-device before binds",
			desired: base(withVS("tcp 10.0.0.2:443", named("api"), sched("sh"), flags(netops.FlagSched2), dests(dest("10.0.1.7:443", 1, fwd(netops.ForwardTunnel), thr(10, 5))))),
			actual:  makeState(),
			want: []string{
				"+ ensure device ravel0 exists and is up",
				"+ add service tcp 10.0.0.1:80 (web): scheduler wrr",
				"+ add service tcp 10.0.0.2:443 (api): scheduler sh flags sh-port",
				"+ add destination 10.0.1.5:80 to tcp 10.0.0.1:80 (web): dr weight 3",
				"+ add destination 10.0.1.6:80 to tcp 10.0.0.1:80 (web): dr weight 1",
				"+ add destination 10.0.1.7:443 to tcp 10.0.0.2:443 (api): tunnel weight 1 upper 10 lower 5",
				"+ bind 10.0.0.1 on ravel0",
				"+ bind 10.0.0.2 on ravel0",
			},
		},
		{
			name:    "weight change: one in-place edit, never delete and add",
			desired: makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 5), dest("10.0.1.6:80", 1)))),
			actual:  base(),
			want:    []string{"~ update destination 10.0.1.5:80 of tcp 10.0.0.1:80 (web): weight 3 -> 5"},
		},
		{
			name:    "forwarding and thresholds change in place",
			desired: makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3, fwd(netops.ForwardTunnel), thr(30, 10)), dest("10.0.1.6:80", 1)))),
			actual:  base(),
			want:    []string{"~ update destination 10.0.1.5:80 of tcp 10.0.0.1:80 (web): forwarding dr -> tunnel, upper 0 -> 30, lower 0 -> 10"},
		},
		{
			name:    "a destination leaving is drained first",
			desired: makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3)))),
			actual:  base(withStats(web, "10.0.1.6:80", 0, 0)),
			want:    []string{"~ drain destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 1 -> 0"},
		},
		{
			name:    "drained past the timeout: deleted",
			desired: makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3)))),
			actual:  base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0))), withStats(web, "10.0.1.6:80", 7, 2)),
			drains:  map[DestRef]time.Time{drainRef(web, "10.0.1.6:80"): t0.Add(-31 * time.Second)},
			want:    []string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): drain timeout"},
		},
		{
			name:    "drained exactly the timeout ago: deleted",
			desired: makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3)))),
			actual:  base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0))), withStats(web, "10.0.1.6:80", 7, 2)),
			drains:  map[DestRef]time.Time{drainRef(web, "10.0.1.6:80"): t0.Add(-30 * time.Second)},
			want:    []string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): drain timeout"},
		},
		{
			name:    "draining within the timeout with connections: kept",
			desired: makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3)))),
			actual:  base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0))), withStats(web, "10.0.1.6:80", 1, 0)),
			drains:  map[DestRef]time.Time{drainRef(web, "10.0.1.6:80"): t0.Add(-10 * time.Second)},
		},
		{
			name:    "draining with inactive connections only: kept",
			desired: makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3)))),
			actual:  base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0))), withStats(web, "10.0.1.6:80", 0, 4)),
			drains:  map[DestRef]time.Time{drainRef(web, "10.0.1.6:80"): t0.Add(-10 * time.Second)},
		},
		{
			name:    "draining without connections: deleted at once",
			desired: makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3)))),
			actual:  base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0))), withStats(web, "10.0.1.6:80", 0, 0)),
			drains:  map[DestRef]time.Time{drainRef(web, "10.0.1.6:80"): t0.Add(-time.Second)},
			want:    []string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): drained, no connections left"},
		},
		{
			name:       "weight 0, not desired, drain start unknown (after a restart): clock started, not deleted",
			desired:    makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3)))),
			actual:     base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0))), withStats(web, "10.0.1.6:80", 3, 0)),
			wantDrains: []DestRef{drainRef(web, "10.0.1.6:80")},
		},
		{
			name:       "weight 0, not desired, drain start unknown, no stats (partial read): clock started, not deleted",
			desired:    makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3)))),
			actual:     base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0)))),
			wantDrains: []DestRef{drainRef(web, "10.0.1.6:80")},
		},
		{
			name:    "a drained destination coming back is edited back to its weight",
			desired: base(),
			actual:  base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0)))),
			drains:  map[DestRef]time.Time{drainRef(web, "10.0.1.6:80"): t0.Add(-time.Hour)},
			want:    []string{"~ update destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 0 -> 1"},
		},
		{
			name:    "a desired weight-0 destination is not drained nor deleted",
			desired: base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0)))),
			actual:  base(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0))), withStats(web, "10.0.1.6:80", 0, 0)),
		},
		{
			name:    "service removed: delete service and unbind its VIP",
			desired: makeState(),
			actual:  makeState(withVS(web, dests(dest("10.0.1.5:80", 3)))), // as read: no name
			want: []string{
				"- delete service tcp 10.0.0.1:80",
				"- unbind 10.0.0.1 from ravel0",
			},
		},
		{
			name:    "service removed, VIP still used by another service: VIP stays",
			desired: makeState(withVS("udp 10.0.0.1:53", named("dns"))),
			actual:  makeState(withVS(web), withVS("udp 10.0.0.1:53")),
			want:    []string{"- delete service tcp 10.0.0.1:80"},
		},
		{
			name:    "protocol change: delete the old service, add the new one",
			desired: makeState(withVS("udp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 3)))),
			actual:  makeState(withVS(web, dests(dest("10.0.1.5:80", 3)))),
			want: []string{
				"- delete service tcp 10.0.0.1:80",
				"+ add service udp 10.0.0.1:80 (web): scheduler wrr",
				"+ add destination 10.0.1.5:80 to udp 10.0.0.1:80 (web): dr weight 3",
			},
		},
		{
			name:    "scheduler change: update the service in place",
			desired: base(withVS(web, named("web"), sched("sh"), flags(netops.FlagSched1), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 1)))),
			actual:  base(),
			want:    []string{"~ update service tcp 10.0.0.1:80 (web): scheduler wrr -> sh, flags none -> sh-fallback"},
		},
		{
			name:    "flags change: update the service in place",
			desired: base(withVS(web, named("web"), sched("mh"), flags(netops.FlagSched2), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 1)))),
			actual:  base(withVS(web, named("web"), sched("mh"), flags(netops.FlagSched1|netops.FlagSched2), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 1)))),
			want:    []string{"~ update service tcp 10.0.0.1:80 (web): flags mh-fallback,mh-port -> mh-port"},
		},
		{
			name:    "foreign service and address absent from desired: never touched",
			desired: base(),
			actual:  base(withVS("tcp 192.168.9.9:80", dests(dest("10.0.9.1:80", 1))), withVIP("192.168.9.10")),
		},
		{
			name:    "foreign service in desired (VIP not owned): never added",
			desired: base(withVS("tcp 192.168.9.9:80", dests(dest("10.0.9.1:80", 1)))),
			actual:  base(),
		},
		{
			name:    "foreign service differing from desired: never edited",
			desired: base(withVS("tcp 192.168.9.9:80", sched("rr"), dests(dest("10.0.9.1:80", 5)))),
			actual:  base(withVS("tcp 192.168.9.9:80", dests(dest("10.0.9.1:80", 1), dest("10.0.9.2:80", 1)))),
		},
		{
			name:    "owned VIP bound without a service: unbound",
			desired: base(),
			actual:  base(withVIP("10.0.0.3")),
			want:    []string{"- unbind 10.0.0.3 from ravel0"},
		},
		{
			name:    "VIP missing (drift): device ensured, VIP bound",
			desired: base(),
			actual:  base(withoutVIP("10.0.0.1")),
			want:    []string{"+ ensure device ravel0 exists and is up", "+ bind 10.0.0.1 on ravel0"},
		},
		{
			name:    "VIPs on lo: no device to ensure",
			desired: base(withDevice("lo")),
			actual:  makeState(withDevice("lo")),
			want: []string{
				"+ add service tcp 10.0.0.1:80 (web): scheduler wrr",
				"+ add destination 10.0.1.5:80 to tcp 10.0.0.1:80 (web): dr weight 3",
				"+ add destination 10.0.1.6:80 to tcp 10.0.0.1:80 (web): dr weight 1",
				"+ bind 10.0.0.1 on lo",
			},
		},
		{
			name:    "service missing (drift, e.g. ipvsadm -D): re-added with its destinations, VIP kept",
			desired: base(),
			actual:  makeState(withVIP("10.0.0.1")),
			want: []string{
				"+ add service tcp 10.0.0.1:80 (web): scheduler wrr",
				"+ add destination 10.0.1.5:80 to tcp 10.0.0.1:80 (web): dr weight 3",
				"+ add destination 10.0.1.6:80 to tcp 10.0.0.1:80 (web): dr weight 1",
			},
		},
		{
			name:    "sysctls: changed and unknown values set, sorted; keys not desired untouched",
			desired: base(withSysctlValue("net/ipv4/vs/sloppy_tcp", "1"), withSysctlValue("net/ipv4/vs/conntrack", "1"), withSysctlValue("net/ipv4/vs/expire_nodest_conn", "1")),
			actual:  base(withSysctlValue("net/ipv4/vs/sloppy_tcp", "0"), withSysctlValue("net/ipv4/vs/expire_nodest_conn", "1"), withSysctlValue("net/ipv4/vs/schedule_icmp", "1")),
			want: []string{
				"~ set sysctl net.ipv4.vs.conntrack: ? -> 1",
				"~ set sysctl net.ipv4.vs.sloppy_tcp: 0 -> 1",
			},
		},
		{
			name:    "vector sysctl: desired leading values already there",
			desired: base(withSysctlValue("net/ipv4/vs/sync_threshold", "5")),
			actual:  base(withSysctlValue("net/ipv4/vs/sync_threshold", "5\t50")),
		},
		{
			name:    "vector sysctl: leading value differs",
			desired: base(withSysctlValue("net/ipv4/vs/sync_threshold", "5")),
			actual:  base(withSysctlValue("net/ipv4/vs/sync_threshold", "3\t50")),
			want:    []string{"~ set sysctl net.ipv4.vs.sync_threshold: 3 50 -> 5"},
		},
		{
			name: "whole plan: deletions, then edits, then additions",
			desired: makeState(
				withSysctlValue("net/ipv4/vs/conntrack", "1"),
				withVS(web, named("web"), sched("sh"), dests(dest("10.0.1.5:80", 4), dest("10.0.1.8:80", 1))),
				withVS("tcp 10.0.0.3:80", named("new"), dests(dest("10.0.3.1:80", 1))),
				withVS("tcp 192.168.9.9:80", named("foreign"), dests(dest("10.0.9.1:80", 1)))),
			actual: makeState(
				withSysctlValue("net/ipv4/vs/conntrack", "0"),
				withVS(web, dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 1), dest("10.0.1.7:80", 0))),
				withVS("tcp 10.0.0.2:443", dests(dest("10.0.2.1:443", 1))),
				withVS("tcp 192.168.9.9:80", dests(dest("10.0.9.2:80", 1))),
				withStats(web, "10.0.1.7:80", 0, 0)),
			want: []string{
				"- delete service tcp 10.0.0.2:443",
				"- delete destination 10.0.1.7:80 from tcp 10.0.0.1:80 (web): drained, no connections left",
				"- unbind 10.0.0.2 from ravel0",
				"~ set sysctl net.ipv4.vs.conntrack: 0 -> 1",
				"~ update service tcp 10.0.0.1:80 (web): scheduler wrr -> sh",
				"~ drain destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 1 -> 0",
				"~ update destination 10.0.1.5:80 of tcp 10.0.0.1:80 (web): weight 3 -> 4",
				"+ ensure device ravel0 exists and is up",
				"+ add service tcp 10.0.0.3:80 (new): scheduler wrr",
				"+ add destination 10.0.1.8:80 to tcp 10.0.0.1:80 (web): dr weight 1",
				"+ add destination 10.0.3.1:80 to tcp 10.0.0.3:80 (new): dr weight 1",
				"+ bind 10.0.0.3 on ravel0",
			},
			wantDrains: []DestRef{drainRef(web, "10.0.1.7:80")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Diff(tt.desired, tt.actual, diffOpts(tt.drains))
			if d := cmp.Diff(tt.want, lines(p), cmpOpts); d != "" {
				t.Errorf("plan (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantDrains, p.DrainsStarted, cmpOpts); d != "" {
				t.Errorf("DrainsStarted (-want +got):\n%s", d)
			}
			checkPhases(t, p)
		})
	}
}

// checkPhases asserts the plan's invariants: kinds never go backwards (so deletions come
// before edits, edits before additions, an added service before any destination and the
// device before any bind), and a deleted service is not otherwise touched.
func checkPhases(t *testing.T, p *Plan) {
	t.Helper()
	deleted := map[netops.ServiceKey]bool{}
	for i, op := range p.Ops {
		if i > 0 && op.Kind < p.Ops[i-1].Kind {
			t.Errorf("op %d (%s) after op %d (%s): out of phase", i, op, i-1, p.Ops[i-1])
		}
		if op.Kind == OpDelService {
			deleted[op.Service.ServiceKey] = true
		}
	}
	for _, op := range p.Ops {
		switch op.Kind {
		case OpDelDest, OpUpdateService, OpDrainDest, OpUpdateDest, OpAddService, OpAddDest:
			if deleted[op.Service.ServiceKey] {
				t.Errorf("service %s is deleted but the plan also has %q", op.Service.ServiceKey, op)
			}
		}
	}
}

// A scenario in time: a destination leaves, is drained by the first Diff, and deleted by a
// later one once the drain timeout has passed (the caller records the drain start from the
// drain op, as the daemon does).
func TestDiffDrainLifecycle(t *testing.T) {
	web := "tcp 10.0.0.1:80"
	desired := makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3))))
	actual := makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 2))))
	drains := map[DestRef]time.Time{}

	opts := diffOpts(drains)
	p := Diff(desired, actual, opts)
	if d := cmp.Diff([]string{"~ drain destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 2 -> 0"}, lines(p)); d != "" {
		t.Fatalf("first diff (-want +got):\n%s", d)
	}
	drains[drainRef(web, "10.0.1.6:80")] = opts.Now
	// The kernel now has the destination at weight 0, with connections.
	actual = makeState(withVS(web, named("web"), dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 0))), withStats(web, "10.0.1.6:80", 5, 5))

	for _, step := range []struct {
		after time.Duration
		want  []string
	}{
		{after: time.Second},
		{after: 29 * time.Second},
		{after: 30 * time.Second, want: []string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): drain timeout"}},
		{after: time.Hour, want: []string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): drain timeout"}},
	} {
		opts := diffOpts(drains)
		opts.Now = t0.Add(step.after)
		p := Diff(desired, actual, opts)
		if d := cmp.Diff(step.want, lines(p)); d != "" {
			t.Errorf("after %s (-want +got):\n%s", step.after, d)
		}
		if len(p.DrainsStarted) != 0 {
			t.Errorf("after %s: DrainsStarted = %v for a drain whose start is known", step.after, p.DrainsStarted)
		}
	}
}

// A zero drain timeout deletes a weight-0 leaving destination on the Diff that finds it.
func TestDiffZeroDrainTimeout(t *testing.T) {
	web := "tcp 10.0.0.1:80"
	desired := makeState(withVS(web, named("web")))
	actual := makeState(withVS(web, named("web"), dests(dest("10.0.1.6:80", 0))), withStats(web, "10.0.1.6:80", 1, 1))
	opts := diffOpts(nil)
	opts.DrainTimeout = 0
	p := Diff(desired, actual, opts)
	if d := cmp.Diff([]string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): drain timeout"}, lines(p)); d != "" {
		t.Errorf("plan (-want +got):\n%s", d)
	}
}

// Diff never changes its inputs.
func TestDiffDoesNotMutate(t *testing.T) {
	mk := func() (*State, *State) {
		return makeState(withVS("tcp 10.0.0.1:80", sched("sh"), dests(dest("10.0.1.5:80", 4)))),
			makeState(withVS("tcp 10.0.0.1:80", dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 1))), withVIP("10.0.0.2"))
	}
	d, a := mk()
	drains := map[DestRef]time.Time{drainRef("tcp 10.0.0.1:80", "10.0.1.9:80"): t0}
	opts := diffOpts(drains)
	Diff(d, a, opts)
	wd, wa := mk()
	if diff := cmp.Diff(wd, d, cmpOpts); diff != "" {
		t.Errorf("desired changed:\n%s", diff)
	}
	if diff := cmp.Diff(wa, a, cmpOpts); diff != "" {
		t.Errorf("actual changed:\n%s", diff)
	}
	if diff := cmp.Diff(drains, opts.Drains.since, cmpOpts); diff != "" {
		t.Errorf("Drains changed (-before +after):\n%s", diff)
	}
}

// DiffServices at a one-destination change emits exactly the minimal ops, and only for the
// keys asked, whatever else differs.
func TestDiffServicesMinimal(t *testing.T) {
	web, webUDP, other := "tcp 10.0.0.1:80", "udp 10.0.0.1:80", "tcp 10.0.0.2:80"
	actual := makeState(
		withVS(web, dests(dest("10.1.0.1:80", 3), dest("10.1.0.2:80", 1))),
		withVS(webUDP, dests(dest("10.1.0.1:80", 3), dest("10.1.0.2:80", 1))),
		withVS(other, dests(dest("10.1.0.1:80", 1))))
	desired := makeState(
		withVS(web, named("web"), dests(dest("10.1.0.1:80", 3), dest("10.1.0.2:80", 2))),
		withVS(webUDP, named("web"), dests(dest("10.1.0.1:80", 3), dest("10.1.0.2:80", 2))),
		withVS(other, named("other"), dests(dest("10.1.0.1:80", 9))), // differs, but not asked
		withSysctlValue("net/ipv4/vs/conntrack", "1"),                // idem
		withVIP("10.0.0.3"))

	p := DiffServices(desired, actual, []netops.ServiceKey{skey(webUDP), skey(web), skey(web)}, diffOpts(nil))
	want := []Op{
		{Kind: OpUpdateDest, Name: "web", Service: netops.Service{ServiceKey: skey(web), Scheduler: "wrr"},
			Dest: dest("10.1.0.2:80", 2), OpDetail: &OpDetail{OldDest: dest("10.1.0.2:80", 1)}},
		{Kind: OpUpdateDest, Name: "web", Service: netops.Service{ServiceKey: skey(webUDP), Scheduler: "wrr"},
			Dest: dest("10.1.0.2:80", 2), OpDetail: &OpDetail{OldDest: dest("10.1.0.2:80", 1)}},
	}
	if d := cmp.Diff(want, p.Ops, cmpOpts); d != "" {
		t.Errorf("ops (-want +got):\n%s", d)
	}
	if len(p.DrainsStarted) != 0 {
		t.Errorf("DrainsStarted = %v", p.DrainsStarted)
	}

	// A destination leaving: exactly one drain op.
	desired.Services[skey(web)] = makeVS(web, named("web"), dests(dest("10.1.0.1:80", 3)))
	p = DiffServices(desired, actual, []netops.ServiceKey{skey(web)}, diffOpts(nil))
	want = []Op{{Kind: OpDrainDest, Name: "web", Service: netops.Service{ServiceKey: skey(web), Scheduler: "wrr"},
		Dest: dest("10.1.0.2:80", 0), OpDetail: &OpDetail{OldDest: dest("10.1.0.2:80", 1)}}}
	if d := cmp.Diff(want, p.Ops, cmpOpts); d != "" {
		t.Errorf("leaving: ops (-want +got):\n%s", d)
	}

	// A destination arriving: exactly one add op.
	desired.Services[skey(web)] = makeVS(web, named("web"), dests(dest("10.1.0.1:80", 3), dest("10.1.0.2:80", 1), dest("10.1.0.3:80", 1)))
	p = DiffServices(desired, actual, []netops.ServiceKey{skey(web)}, diffOpts(nil))
	want = []Op{{Kind: OpAddDest, Name: "web", Service: netops.Service{ServiceKey: skey(web), Scheduler: "wrr"},
		Dest: dest("10.1.0.3:80", 1)}}
	if d := cmp.Diff(want, p.Ops, cmpOpts); d != "" {
		t.Errorf("arriving: ops (-want +got):\n%s", d)
	}

	// Keys of another owner are ignored.
	p = DiffServices(makeState(withVS("tcp 192.168.9.9:80")), makeState(), []netops.ServiceKey{skey("tcp 192.168.9.9:80")}, diffOpts(nil))
	if !p.Empty() {
		t.Errorf("foreign key: plan %s", p)
	}
}

// DiffServices over every key equals Diff's service ops.
func TestDiffServicesAllKeysEqualsDiff(t *testing.T) {
	desired := makeState(
		withVS("tcp 10.0.0.1:80", named("web"), sched("sh"), dests(dest("10.0.1.5:80", 4), dest("10.0.1.8:80", 1))),
		withVS("tcp 10.0.0.3:80", named("new"), dests(dest("10.0.3.1:80", 1))))
	actual := makeState(
		withVS("tcp 10.0.0.1:80", dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 1))),
		withVS("tcp 10.0.0.2:443", dests(dest("10.0.2.1:443", 1))))
	var keys []netops.ServiceKey
	for _, st := range []*State{desired, actual} {
		keys = append(keys, st.SortedServiceKeys()...)
	}
	full := Diff(desired, actual, diffOpts(nil))
	var want []string
	for _, l := range lines(full) {
		if !strings.Contains(l, "bind ") && !strings.Contains(l, "ensure device") && !strings.Contains(l, "sysctl") {
			want = append(want, l)
		}
	}
	got := DiffServices(desired, actual, keys, diffOpts(nil))
	if d := cmp.Diff(want, lines(got)); d != "" {
		t.Errorf("DiffServices vs Diff (-Diff +DiffServices):\n%s", d)
	}
}

// TestDiffKeep: a service whose target is not known yet keeps the destinations it has (a
// reload never empties it); a missing one is created without any, and its scheduler follows
// the config.
func TestDiffKeep(t *testing.T) {
	keep := func(v *VirtualService) { v.Keep = true }
	desired := makeState(withVS("tcp 10.0.0.1:80", named("web"), sched("mh"), keep), withVS("tcp 10.0.0.2:80", named("new"), keep))
	actual := makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.1.0.1:80", 2), dest("10.1.0.2:80", 1))))
	keys := []netops.ServiceKey{skey("tcp 10.0.0.1:80"), skey("tcp 10.0.0.2:80")}
	got := DiffServices(desired, actual, keys, DiffOptions{Owned: owned("10.0.0.1", "10.0.0.2")}).String()
	want := "~ update service tcp 10.0.0.1:80 (web): scheduler wrr -> mh\n+ add service tcp 10.0.0.2:80 (new): scheduler wrr\n"
	if got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}
