package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
)

// TestDirectorDrain: a node that leaves the eligible set is drained (weight 0 at once), stays
// while it has connections and the drain timeout (30s in director-kube.yaml) has not passed,
// and is deleted when its connections end or the timeout passes, whichever is first.
func TestDirectorDrain(t *testing.T) {
	web := svcKey("10.54.213.247", 80, "tcp")
	n3 := netops.DestKey{Addr: netip.MustParseAddr("10.1.0.3"), Port: 80}
	drained := "tcp 10.54.213.247:80 wrr flags=0x0\n" +
		"  -> 10.1.0.1:80 dr w=2 x=0 y=0\n" +
		"  -> 10.1.0.2:80 dr w=1 x=0 y=0\n" +
		"  -> 10.1.0.3:80 dr w=0 x=0 y=0\n"
	gone := "tcp 10.54.213.247:80 wrr flags=0x0\n" +
		"  -> 10.1.0.1:80 dr w=2 x=0 y=0\n" +
		"  -> 10.1.0.2:80 dr w=1 x=0 y=0\n"
	busy := netops.DestStats{ActiveConns: 4, InactiveConns: 2}

	type step struct {
		advance time.Duration     // clock moves before the sync
		stats   *netops.DestStats // n3's counters before the sync, if set
		want    string            // IPVS after the sync
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "connections end before the timeout",
			steps: []step{
				{advance: 10 * time.Second, want: drained},
				{advance: 10 * time.Second, stats: &netops.DestStats{InactiveConns: 1}, want: drained},
				{advance: time.Second, stats: &statsIdle, want: gone},
			},
		},
		{
			name: "timeout passes with connections left",
			steps: []step{
				{advance: 29 * time.Second, want: drained},
				{advance: 999 * time.Millisecond, want: drained},
				{advance: time.Millisecond, want: gone},
			},
		},
		{
			name: "node comes back while draining",
			steps: []step{
				{advance: 5 * time.Second, want: drained},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes()
			d, clock, m := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
			d.OnSnapshot(kubeSnapshot(withChanged(webRef), withNodesChanged))
			if diff := cmp.Diff(kubeIPVS, f.ipvs.Dump()); diff != "" {
				t.Fatalf("first sync (-want +got):\n%s", diff)
			}
			must(t, f.ipvs.SetStats(web, n3, busy))

			// n3 stops being Ready: it leaves the eligible set.
			f.resetCalls()
			d.OnSnapshot(kubeSnapshot(withNode("n3", "10.1.0.3", notReady), withNodesChanged))
			wantOps := []string{"ipvs: UpdateDestination tcp 10.54.213.247:80 -> 10.1.0.3:80 dr w=0 x=0 y=0"}
			if diff := cmp.Diff(wantOps, f.mutations()); diff != "" {
				t.Fatalf("drain (-want +got):\n%s", diff)
			}
			if got := value(t, m.Draining); got != 1 {
				t.Errorf("ravel_destinations_draining = %v, want 1", got)
			}
			if got := value(t, m.Ops.WithLabelValues("drain-destination")); got != 1 {
				t.Errorf("ravel_plan_ops_total{kind=drain-destination} = %v, want 1", got)
			}

			for i, s := range tt.steps {
				clock.advance(s.advance)
				if s.stats != nil {
					must(t, f.ipvs.SetStats(web, n3, *s.stats))
				}
				d.FullSync()
				if diff := cmp.Diff(s.want, f.ipvs.Dump()); diff != "" {
					t.Fatalf("step %d (+%s): IPVS (-want +got):\n%s", i, s.advance, diff)
				}
			}
			if tt.name == "node comes back while draining" {
				f.resetCalls()
				d.OnSnapshot(kubeSnapshot(withNodesChanged))
				wantOps := []string{"ipvs: UpdateDestination tcp 10.54.213.247:80 -> 10.1.0.3:80 dr w=1 x=0 y=0"}
				if diff := cmp.Diff(wantOps, f.mutations()); diff != "" {
					t.Fatalf("return (-want +got):\n%s", diff)
				}
				if n := d.drains.Pending(); n != 0 {
					t.Errorf("drain of a returned destination still pending: %d", n)
				}
				return
			}
			if got := value(t, m.Draining); got != 0 {
				t.Errorf("ravel_destinations_draining = %v after the delete, want 0", got)
			}
			if got := value(t, m.Ops.WithLabelValues("delete-destination")); got != 1 {
				t.Errorf("ravel_plan_ops_total{kind=delete-destination} = %v, want 1", got)
			}
			// Gone for good: later syncs neither add it back nor touch anything.
			f.resetCalls()
			clock.advance(time.Hour)
			d.FullSync()
			if got := f.mutations(); len(got) != 0 {
				t.Errorf("sync after the drain changed the kernel:\n%q", got)
			}
		})
	}
}

// TestDirectorDrainAdoptedOnRestart: a director that restarts while a destination drains finds
// it at weight 0 and not desired; it leaves it in place while it has connections and starts its
// own drain clock, rather than deleting it at once or restoring its weight.
func TestDirectorDrainAdoptedOnRestart(t *testing.T) {
	web := svcKey("10.54.213.247", 80, "tcp")
	n3 := netops.DestKey{Addr: netip.MustParseAddr("10.1.0.3"), Port: 80}
	f := newFakes()
	first, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
	first.OnSnapshot(kubeSnapshot(withChanged(webRef), withNodesChanged))
	must(t, f.ipvs.SetStats(web, n3, netops.DestStats{ActiveConns: 1}))
	leaving := kubeSnapshot(withNode("n3", "10.1.0.3", notReady), withNodesChanged)
	first.OnSnapshot(leaving)

	f.resetCalls()
	second, clock, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
	second.OnSnapshot(leaving)
	if got := f.mutations(); len(got) != 0 {
		t.Fatalf("restart during a drain changed the kernel:\n%q", got)
	}
	clock.advance(30 * time.Second)
	second.FullSync()
	want := []string{"ipvs: DelDestination tcp 10.54.213.247:80 -> 10.1.0.3:80"}
	if diff := cmp.Diff(want, f.mutations()); diff != "" {
		t.Errorf("after the drain timeout (-want +got):\n%s", diff)
	}
}

// TestDirectorPartialSync: a snapshot that changes one service and no node is programmed by
// reading and diffing only that service: one in-place weight edit, no delete and add, no full
// read of the kernel.
func TestDirectorPartialSync(t *testing.T) {
	tests := []struct {
		name    string
		snap    snapOpt // on top of kubeSnapshot
		wantOps []string
	}{
		{
			name: "one more ready endpoint on n2",
			snap: withEndpoints(webRef,
				ready("10.244.1.5", 8080, "n1"), ready("10.244.1.6", 8080, "n1"),
				ready("10.244.2.5", 8080, "n2"), ready("10.244.2.6", 8080, "n2"), ready("10.244.3.5", 8080, "n3")),
			wantOps: []string{"ipvs: UpdateDestination tcp 10.54.213.247:80 -> 10.1.0.2:80 dr w=2 x=0 y=0"},
		},
		{
			name: "last ready endpoint on n3 gone",
			snap: withEndpoints(webRef,
				ready("10.244.1.5", 8080, "n1"), ready("10.244.1.6", 8080, "n1"),
				ready("10.244.2.5", 8080, "n2"), unready("10.244.3.5", 8080, "n3")),
			// n3 stays eligible: it keeps its place at weight 0 (no new connections), no drain.
			wantOps: []string{"ipvs: UpdateDestination tcp 10.54.213.247:80 -> 10.1.0.3:80 dr w=0 x=0 y=0"},
		},
		{
			name:    "nothing changed",
			snap:    func(*kube.Snapshot) {},
			wantOps: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes()
			d, _, m := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
			d.OnSnapshot(kubeSnapshot(withChanged(webRef), withNodesChanged))
			f.resetCalls()

			d.OnSnapshot(kubeSnapshot(tt.snap, withChanged(webRef)))
			if diff := cmp.Diff(tt.wantOps, f.mutations()); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if got := f.ipvs.CallCounts(); got["Services"] != 0 || got["AddDestination"] != 0 || got["DelDestination"] != 0 {
				t.Errorf("partial sync calls %v: want no Services listing, no add or delete", got)
			}
			if got := f.ipvs.Calls("UpdateDestination"); got != len(tt.wantOps) {
				t.Errorf("UpdateDestination called %d times, want %d", got, len(tt.wantOps))
			}
			if got := value(t, m.Syncs.WithLabelValues("partial", "ok")); tt.wantOps != nil && got != 1 {
				t.Errorf("ravel_reconcile_total{kind=partial,result=ok} = %v, want 1", got)
			}
			if got := value(t, m.Syncs.WithLabelValues("full", "ok")); got != 1 {
				t.Errorf("ravel_reconcile_total{kind=full,result=ok} = %v, want 1 (the first snapshot only)", got)
			}
			// The partial result is what a full sync computes: it finds nothing more to do.
			f.resetCalls()
			d.FullSync()
			if got := f.mutations(); len(got) != 0 {
				t.Errorf("full sync after the partial one changed the kernel:\n%q", got)
			}
		})
	}
}

// TestDirectorApplyFailure: a refused operation is counted, and the next cycle, even one that
// could have been partial, is a full resync that repairs it.
func TestDirectorApplyFailure(t *testing.T) {
	tests := []struct {
		name   string
		failOp string
		// cause runs the cycle that fails, after a good first sync unless it is nil.
		cause   func(d *Director)
		wantBad string // IPVS after the failed cycle
	}{
		{
			name:   "AddDestination refused in the first full sync",
			failOp: "AddDestination",
			wantBad: "tcp 10.54.213.247:80 wrr flags=0x0\n" +
				"  -> 10.1.0.2:80 dr w=1 x=0 y=0\n" +
				"  -> 10.1.0.3:80 dr w=1 x=0 y=0\n",
		},
		{
			name:   "UpdateDestination refused in a partial sync",
			failOp: "UpdateDestination",
			cause: func(d *Director) {
				d.OnSnapshot(kubeSnapshot(withChanged(webRef), withEndpoints(webRef,
					ready("10.244.1.5", 8080, "n1"), ready("10.244.2.5", 8080, "n2"), ready("10.244.3.5", 8080, "n3"))))
			},
			wantBad: kubeIPVS,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes()
			d, _, m := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
			want := kubeIPVS
			if tt.cause == nil {
				f.ipvs.FailNext(tt.failOp, errInjected)
				d.OnSnapshot(kubeSnapshot(withChanged(webRef), withNodesChanged))
			} else {
				d.OnSnapshot(kubeSnapshot(withChanged(webRef), withNodesChanged))
				f.ipvs.FailNext(tt.failOp, errInjected)
				tt.cause(d)
				want = strings.Replace(kubeIPVS, "10.1.0.1:80 dr w=2", "10.1.0.1:80 dr w=1", 1)
			}
			if diff := cmp.Diff(tt.wantBad, f.ipvs.Dump()); diff != "" {
				t.Fatalf("after the failure (-want +got):\n%s", diff)
			}
			if got := value(t, m.ApplyErrors); got != 1 {
				t.Errorf("ravel_apply_errors_total = %v, want 1", got)
			}

			// The next snapshot changes nothing and names no node: it would be a partial sync
			// of nothing, but the failure forces a full resync.
			services := f.ipvs.Calls("Services")
			fullOK := value(t, m.Syncs.WithLabelValues("full", "ok"))
			d.OnSnapshot(steady(d.snap))
			if f.ipvs.Calls("Services") != services+1 {
				t.Errorf("the cycle after the failure did not read the whole kernel")
			}
			if got := value(t, m.Syncs.WithLabelValues("full", "ok")); got != fullOK+1 {
				t.Errorf("ravel_reconcile_total{kind=full,result=ok} = %v, want %v", got, fullOK+1)
			}
			if diff := cmp.Diff(want, f.ipvs.Dump()); diff != "" {
				t.Errorf("after the resync (-want +got):\n%s", diff)
			}
			if got := value(t, m.ApplyErrors); got != 1 {
				t.Errorf("ravel_apply_errors_total = %v after the repair, want still 1", got)
			}
			// Repaired: the next snapshot is partial again.
			services = f.ipvs.Calls("Services")
			d.OnSnapshot(steady(d.snap))
			if f.ipvs.Calls("Services") != services {
				t.Errorf("a full resync ran again after the repair")
			}
		})
	}
}

// TestDirectorThresholdClamp: a threshold share above 65535 is clamped, and counted.
func TestDirectorThresholdClamp(t *testing.T) {
	f := newFakes()
	d, _, m := newTestDirector(t, loadConfig(t, "director-clamp.yaml"), f, nil)
	d.FullSync()
	want := "tcp 10.54.213.247:80 wrr flags=0x0\n  -> 10.0.1.5:80 dr w=1 x=65535 y=10\n"
	if diff := cmp.Diff(want, f.ipvs.Dump()); diff != "" {
		t.Errorf("IPVS (-want +got):\n%s", diff)
	}
	if got := value(t, m.ThresholdClamped); got != 1 {
		t.Errorf("ravel_threshold_clamped_total = %v, want 1", got)
	}

	f2 := newFakes()
	d2, _, m2 := newTestDirector(t, loadConfig(t, "director-static.yaml"), f2, nil)
	d2.FullSync()
	if got := value(t, m2.ThresholdClamped); got != 0 {
		t.Errorf("ravel_threshold_clamped_total = %v without any clamp, want 0", got)
	}
}
