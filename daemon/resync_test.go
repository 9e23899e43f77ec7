package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/ravel-lb/ravel/netops"
)

// gatedIPVS holds the result of every full read's destination dump until open is closed: a
// resync's read that takes its time, as at 10,000 services, and that what happens meanwhile
// makes stale.
type gatedIPVS struct {
	netops.IPVS
	open chan struct{}
}

func (g gatedIPVS) ListedDestinations(k netops.ServiceKey) ([]netops.Destination, []netops.DestStats, error) {
	dests, stats, err := g.IPVS.ListedDestinations(k)
	<-g.open
	return dests, stats, err
}

// awaitRead waits for the resync's read, failing t after a while.
func awaitRead(t *testing.T, d *Director) fullRead {
	t.Helper()
	select {
	case r := <-d.fullReads:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the resync's read never came")
	}
	return fullRead{}
}

// TestResyncReadLeavesTheLoopFree: while the periodic resync's read is under way, an
// EndpointSlice change is applied at once; when the read comes, the service that change
// touched is read again, so the resync neither undoes nor repeats it (no op at all).
func TestResyncReadLeavesTheLoopFree(t *testing.T) {
	f := newFakes()
	d, clock, m := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
	d.OnSnapshot(kubeSnapshot(withChanged(webRef), withNodesChanged))
	gate := make(chan struct{})
	d.kernel.IPVS = gatedIPVS{f.ipvs, gate}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	d.startFullRead(ctx)
	// n2 gets a second ready endpoint: its weight goes from 1 to 2.
	d.OnSnapshot(kubeSnapshot(withEndpoints(webRef,
		ready("10.244.1.5", 8080, "n1"), ready("10.244.1.6", 8080, "n1"), unready("10.244.1.7", 8080, "n1"),
		ready("10.244.2.5", 8080, "n2"), ready("10.244.2.6", 8080, "n2"), ready("10.244.3.5", 8080, "n3"),
		ready("10.244.9.5", 8080, "other")), withChanged(webRef)))
	want := "tcp 10.54.213.247:80 wrr flags=0x0\n" +
		"  -> 10.1.0.1:80 dr w=2 x=0 y=0\n" +
		"  -> 10.1.0.2:80 dr w=2 x=0 y=0\n" +
		"  -> 10.1.0.3:80 dr w=1 x=0 y=0\n"
	if diff := cmp.Diff(want, f.ipvs.Dump()); diff != "" {
		t.Fatalf("the change did not reach IPVS while the resync read (-want +got):\n%s", diff)
	}
	f.resetCalls()
	clock.advance(7 * time.Second) // the read's time counts in the resync's duration
	before := durationSum(t, m)
	close(gate)
	d.finishFullRead(ctx, awaitRead(t, d))
	if got := durationSum(t, m) - before; got < 7 {
		t.Errorf("the resync's ravel_reconcile_duration_seconds is %.1f s, want at least the read's 7 s", got)
	}
	if got := f.mutations(); len(got) != 0 {
		t.Errorf("the resync changed the kernel after the change it did not see: %q", got)
	}
	if diff := cmp.Diff(want, f.ipvs.Dump()); diff != "" {
		t.Errorf("IPVS after the resync (-want +got):\n%s", diff)
	}
	if got := value(t, m.Syncs.WithLabelValues("full", "ok")); got != 2 {
		t.Errorf("full syncs ok = %v, want 2 (the first and the resync)", got)
	}
}

// TestResyncReadRepairsDrift: the resync whose read ran outside the loop repairs a weight
// changed by hand, as FullSync does; a full sync in the loop meanwhile makes its read moot.
func TestResyncReadRepairsDrift(t *testing.T) {
	f := newFakes()
	d, _, _ := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
	d.FullSync()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	drift(t, f)
	d.startFullRead(ctx)
	d.finishFullRead(ctx, awaitRead(t, d))
	if diff := cmp.Diff(staticIPVS, f.ipvs.Dump()); diff != "" {
		t.Errorf("IPVS after the resync (-want +got):\n%s", diff)
	}

	gate := make(chan struct{})
	d.kernel.IPVS = gatedIPVS{f.ipvs, gate}
	d.startFullRead(ctx)
	d.kernel.IPVS = f.ipvs
	d.FullSync() // in the loop, while the read waits
	drift(t, f)
	f.resetCalls()
	close(gate)
	d.finishFullRead(ctx, awaitRead(t, d))
	if got := f.mutations(); len(got) != 0 {
		t.Errorf("a read made moot by a full sync was applied: %q", got)
	}
}

// drift changes the weight of one of ravel's destinations behind its back.
func drift(t *testing.T, f *fakes) {
	t.Helper()
	k := svcKey("10.54.213.247", 80, "tcp")
	dests, err := f.ipvs.Destinations(k)
	if err != nil || len(dests) == 0 {
		t.Fatalf("no destination to change on %v: %v", k, err)
	}
	d := dests[0]
	d.Weight += 5
	must(t, f.ipvs.UpdateDestination(k, d))
}

// durationSum is the sum of ravel_reconcile_duration_seconds.
func durationSum(t *testing.T, m *Metrics) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.SyncDuration.Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram().GetSampleSum()
}
