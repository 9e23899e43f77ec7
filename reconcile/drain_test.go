package reconcile

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// drainCycle runs one cycle on d as the daemon does, at t0+at: Diff, Forget, then Applied
// with err, or, when err is nil, with the error Apply returns when the kernel refuses the
// ops of the kinds in refuse.
type drainCycle struct {
	at      time.Duration
	desired *State
	actual  *State
	refuse  []OpKind
	err     error
	want    []string                  // the plan
	drains  map[DestRef]time.Duration // pending after the cycle: each start, since t0
}

func TestDrains(t *testing.T) {
	web, keep, leaving := "tcp 10.0.0.1:80", "10.0.1.5:80", "10.0.1.6:80"
	ref := drainRef(web, leaving)
	desired := makeState(withVS(web, named("web"), dests(dest(keep, 3))))
	both := makeState(withVS(web, named("web"), dests(dest(keep, 3), dest(leaving, 2))))
	serving := makeState(withVS(web, dests(dest(keep, 3), dest(leaving, 2))))
	// draining is the kernel after the drain op, with the leaving destination's counters.
	draining := func(active, inactive int) *State {
		return makeState(withVS(web, dests(dest(keep, 3), dest(leaving, 0))), withStats(web, leaving, active, inactive))
	}
	drainOp := "~ drain destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 2 -> 0"
	started := map[DestRef]time.Duration{ref: 0}
	// start is the first cycle of most cases: the destination leaves and is drained.
	start := drainCycle{desired: desired, actual: serving, want: []string{drainOp}, drains: started}
	// waiting is a later cycle in which the drain started by start goes on.
	waiting := func(at time.Duration, actual *State) drainCycle {
		return drainCycle{at: at, desired: desired, actual: actual, drains: started}
	}
	// deleted is a cycle that deletes the leaving destination, for reason.
	deleted := func(at time.Duration, actual *State, reason string) drainCycle {
		return drainCycle{at: at, desired: desired, actual: actual,
			want: []string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): " + reason}}
	}

	tests := []struct {
		name   string
		cycles []drainCycle
	}{
		{
			name: "start: a drain op the kernel took starts the drain",
			cycles: []drainCycle{
				start,
				waiting(10*time.Second, draining(4, 2)),
			},
		},
		{
			name: "cancel on return: the destination is desired again",
			cycles: []drainCycle{
				start,
				{at: 5 * time.Second, desired: both, actual: draining(4, 2),
					want: []string{"~ update destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 0 -> 2"}},
			},
		},
		{
			name: "delete after the timeout, connections or not",
			cycles: []drainCycle{
				start,
				waiting(29*time.Second, draining(4, 2)),
				deleted(30*time.Second, draining(4, 2), "drain timeout"),
			},
		},
		{
			name: "delete when the connections reach 0",
			cycles: []drainCycle{
				start,
				waiting(10*time.Second, draining(0, 1)),
				deleted(11*time.Second, draining(0, 0), "drained, no connections left"),
			},
		},
		{
			name: "forget when the service is gone from the kernel (ipvsadm -D)",
			cycles: []drainCycle{
				start,
				{at: time.Second, desired: desired, actual: makeState(withVIP("10.0.0.1")), want: []string{
					"+ add service tcp 10.0.0.1:80 (web): scheduler wrr",
					"+ add destination 10.0.1.5:80 to tcp 10.0.0.1:80 (web): dr weight 3",
				}},
			},
		},
		{
			name: "forget when the destination is gone from the kernel (deleted by hand)",
			cycles: []drainCycle{
				start,
				{at: time.Second, desired: desired, actual: makeState(withVS(web, dests(dest(keep, 3))))},
			},
		},
		{
			name: "a deleted service ends its drains",
			cycles: []drainCycle{
				start,
				{at: time.Second, desired: makeState(), actual: draining(4, 2),
					want: []string{"- delete service tcp 10.0.0.1:80", "- unbind 10.0.0.1 from ravel0"}},
			},
		},
		{
			name: "a drain found in the kernel (after a restart) starts when found",
			cycles: []drainCycle{
				{at: 5 * time.Second, desired: desired, actual: draining(4, 2), drains: map[DestRef]time.Duration{ref: 5 * time.Second}},
				{at: 34 * time.Second, desired: desired, actual: draining(4, 2), drains: map[DestRef]time.Duration{ref: 5 * time.Second}},
				deleted(35*time.Second, draining(4, 2), "drain timeout"),
			},
		},
		{
			name: "a plan that failed to apply does not record drains",
			cycles: []drainCycle{
				{desired: desired, actual: serving, refuse: []OpKind{OpDrainDest}, want: []string{drainOp}},
				// The destination kept its weight: drained again, and this time recorded.
				{at: time.Second, desired: desired, actual: serving, want: []string{drainOp}, drains: map[DestRef]time.Duration{ref: time.Second}},
			},
		},
		{
			name: "a drain the kernel took counts though another op of the plan failed",
			cycles: []drainCycle{
				{desired: makeState(withVS(web, named("web"), dests(dest(keep, 4)))), actual: serving, refuse: []OpKind{OpUpdateDest},
					want: []string{drainOp, "~ update destination 10.0.1.5:80 of tcp 10.0.0.1:80 (web): weight 3 -> 4"}, drains: started},
			},
		},
		{
			name: "an error that is not Apply's counts every op as refused",
			cycles: []drainCycle{
				{desired: desired, actual: serving, err: errBoom, want: []string{drainOp}},
			},
		},
		{
			name: "a refused delete keeps the drain and its start",
			cycles: []drainCycle{
				start,
				{at: 30 * time.Second, desired: desired, actual: draining(4, 2), refuse: []OpKind{OpDelDest},
					want: []string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): drain timeout"}, drains: started},
				deleted(31*time.Second, draining(4, 2), "drain timeout"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Drains
			for i, c := range tt.cycles {
				now := t0.Add(c.at)
				opts := diffOpts(nil)
				opts.Now, opts.Drains = now, &d
				p := Diff(c.desired, c.actual, opts)
				d.Forget(c.desired, c.actual)
				err := c.err
				if err == nil {
					err = refuse(p, c.refuse...)
				}
				d.Applied(p, err, now)
				if diff := cmp.Diff(c.want, lines(p)); diff != "" {
					t.Errorf("cycle %d (+%s): plan (-want +got):\n%s", i, c.at, diff)
				}
				got := map[DestRef]time.Duration{}
				for r, s := range d.since {
					got[r] = s.Sub(t0)
				}
				if diff := cmp.Diff(c.drains, got, cmpOpts); diff != "" {
					t.Errorf("cycle %d (+%s): drains (-want +got):\n%s", i, c.at, diff)
				}
				if d.Pending() != len(c.drains) {
					t.Errorf("cycle %d (+%s): Pending() = %d, want %d", i, c.at, d.Pending(), len(c.drains))
				}
			}
		})
	}
}

// refuse returns the error Apply returns when the kernel refuses p's ops of the given kinds.
func refuse(p *Plan, kinds ...OpKind) error {
	var ae ApplyError
	for i, op := range p.Ops {
		for _, k := range kinds {
			if op.Kind == k {
				ae.Refused = append(ae.Refused, RefusedOp{Index: i, Err: errBoom})
			}
		}
	}
	if ae.Refused == nil {
		return nil
	}
	return &ae
}

func TestDrainsMayDelete(t *testing.T) {
	web, d := "tcp 10.0.0.1:80", "10.0.1.6:80"
	ref := drainRef(web, d)
	var drains Drains
	drains.Start(ref, t0)
	tests := []struct {
		name       string
		drains     *Drains
		stats      []stateOpt
		at         time.Duration
		timeout    time.Duration
		wantReason string
		wantOK     bool
	}{
		{name: "connections left, within the timeout", drains: &drains, stats: []stateOpt{withStats(web, d, 1, 0)}, at: 29 * time.Second, timeout: 30 * time.Second},
		{name: "inactive connections left", drains: &drains, stats: []stateOpt{withStats(web, d, 0, 1)}, at: time.Second, timeout: 30 * time.Second},
		{name: "no connections left", drains: &drains, stats: []stateOpt{withStats(web, d, 0, 0)}, at: time.Second, timeout: 30 * time.Second,
			wantReason: "drained, no connections left", wantOK: true},
		{name: "timeout passed", drains: &drains, stats: []stateOpt{withStats(web, d, 1, 0)}, at: 30 * time.Second, timeout: 30 * time.Second,
			wantReason: "drain timeout", wantOK: true},
		{name: "counters unknown: only the timeout", drains: &drains, at: 29 * time.Second, timeout: 30 * time.Second},
		{name: "unknown drain starts now", drains: &Drains{}, stats: []stateOpt{withStats(web, d, 1, 0)}, at: time.Hour, timeout: 30 * time.Second},
		{name: "nil Drains knows of no drain", stats: []stateOpt{withStats(web, d, 1, 0)}, at: time.Hour, timeout: 30 * time.Second},
		{name: "unknown drain, zero timeout", drains: &Drains{}, stats: []stateOpt{withStats(web, d, 1, 0)}, at: time.Hour,
			wantReason: "drain timeout", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := tt.drains.MayDelete(ref, makeState(tt.stats...), t0.Add(tt.at), tt.timeout)
			if reason != tt.wantReason || ok != tt.wantOK {
				t.Errorf("MayDelete = %q, %t; want %q, %t", reason, ok, tt.wantReason, tt.wantOK)
			}
		})
	}
}
