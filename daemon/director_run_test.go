package daemon

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/schema"
)

// runDirector starts d.Run in the background; stop cancels it and returns Run's error.
func runDirector(t *testing.T, d *Director, snaps <-chan *kube.Snapshot) (stop func() error) {
	stop, _ = runDirectorDone(t, d, snaps)
	return stop
}

// runDirectorDone is runDirector that also returns a channel closed when Run returns.
func runDirectorDone(t *testing.T, d *Director, snaps <-chan *kube.Snapshot) (stop func() error, returned <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ret := make(chan struct{})
	var runErr error
	go func() {
		runErr = d.Run(ctx, snaps)
		close(ret)
	}()
	stop = func() error {
		cancel()
		select {
		case <-ret:
			return runErr
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop, ret
}

// TestDirectorRunWaitsForFirstSnapshot: with a Kubernetes source nothing is programmed before
// the first complete snapshot (a half-synced cache must never empty a service); then the loop
// converges and follows later snapshots; cancelling returns nil and leaves the kernel as it is.
func TestDirectorRunWaitsForFirstSnapshot(t *testing.T) {
	f := newFakes()
	garp := &fakeAnnouncer{}
	d, _, m := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, garp)
	snaps := make(chan *kube.Snapshot)
	stop := runDirector(t, d, snaps)

	// No event can make Run program anything before the snapshot; give it time to misbehave.
	time.Sleep(150 * time.Millisecond)
	if got := f.mutations(); len(got) != 0 {
		t.Fatalf("programmed before the first snapshot:\n%q", got)
	}
	if got := f.ipvs.CallCounts(); len(got) != 0 {
		t.Errorf("read the kernel before the first snapshot: %v", got)
	}
	if got := garp.take(); len(got) != 0 {
		t.Errorf("announced %v before the first snapshot", got)
	}

	snaps <- kubeSnapshot(withChanged(webRef), withNodesChanged)
	waitFor(t, "the first snapshot programmed", func() bool { return f.ipvs.Dump() == kubeIPVS })
	waitFor(t, "the VIP bound", func() bool {
		return f.links.Dump() == "lo device down\nravel0 dummy up\n  10.54.213.247/32\n"
	})
	waitFor(t, "the VIP announced", func() bool { return value(t, m.GARPSent) == 1 })

	// A later snapshot changing one weight.
	snaps <- kubeSnapshot(withChanged(webRef), withEndpoints(webRef,
		ready("10.244.1.5", 8080, "n1"), ready("10.244.2.5", 8080, "n2"), ready("10.244.3.5", 8080, "n3")))
	want := "tcp 10.54.213.247:80 wrr flags=0x0\n" +
		"  -> 10.1.0.1:80 dr w=1 x=0 y=0\n" +
		"  -> 10.1.0.2:80 dr w=1 x=0 y=0\n" +
		"  -> 10.1.0.3:80 dr w=1 x=0 y=0\n"
	waitFor(t, "the second snapshot programmed", func() bool { return f.ipvs.Dump() == want })
	waitFor(t, "the partial sync counted", func() bool { return value(t, m.Syncs.WithLabelValues("partial", "ok")) == 1 })

	before := f.ipvs.Dump() + f.links.Dump() + f.sysctl.Dump()
	f.resetCalls()
	if err := stop(); err != nil {
		t.Errorf("Run returned %v on cancel, want nil", err)
	}
	if got := f.mutations(); len(got) != 0 {
		t.Errorf("stopping changed the kernel:\n%q", got)
	}
	if diff := cmp.Diff(before, f.ipvs.Dump()+f.links.Dump()+f.sysctl.Dump()); diff != "" {
		t.Errorf("state after stop (-before +after):\n%s", diff)
	}
}

// TestDirectorRunCancelledBeforeSnapshot: a director stopped while waiting for Kubernetes
// returns nil and has touched nothing.
func TestDirectorRunCancelledBeforeSnapshot(t *testing.T) {
	f := newFakes()
	d, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
	stop := runDirector(t, d, make(chan *kube.Snapshot))
	if err := stop(); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	if got := f.ipvs.CallCounts(); len(got) != 0 {
		t.Errorf("kernel calls: %v, want none", got)
	}
	if got := f.mutations(); len(got) != 0 {
		t.Errorf("mutations: %q, want none", got)
	}
}

// TestDirectorRunStatic: without a Kubernetes source (nil channel) the director programs at
// once.
func TestDirectorRunStatic(t *testing.T) {
	f := newFakes()
	d, _, _ := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
	stop := runDirector(t, d, nil)
	waitFor(t, "static config programmed", func() bool { return f.ipvs.Dump() == staticIPVS })
	if err := stop(); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
}

// TestDirectorRunRepairsWithoutWaitingForResync: inside Run, a failed apply and a pending drain
// are handled by the short drain tick (1 s), not left until the next resync (60 s here).
func TestDirectorRunRepairsWithoutWaitingForResync(t *testing.T) {
	t.Parallel()
	web := svcKey("10.54.213.247", 80, "tcp")
	n3 := netops.DestKey{Addr: netip.MustParseAddr("10.1.0.3"), Port: 80}
	f := newFakes()
	cfg := loadConfig(t, "director-kube.yaml")
	if cfg.Resync.D() < time.Minute {
		t.Fatalf("resync is %s: the test needs it long enough not to be what repairs", cfg.Resync)
	}
	d, _, m := newTestDirector(t, cfg, f, nil)
	d.now = time.Now // Run's tickers are real: the retry backoff must see time pass
	snaps := make(chan *kube.Snapshot)
	stop := runDirector(t, d, snaps)

	f.ipvs.FailNext("AddDestination", errInjected)
	snaps <- kubeSnapshot(withChanged(webRef), withNodesChanged)
	waitFor(t, "the failure counted", func() bool { return value(t, m.ApplyErrors) == 1 })
	waitFor(t, "the failure repaired", func() bool { return f.ipvs.Dump() == kubeIPVS })

	// n3 leaves with no connections: drained at once, deleted at the next drain tick.
	snaps <- kubeSnapshot(withNode("n3", "10.1.0.3", notReady), withNodesChanged)
	waitFor(t, "n3 deleted", func() bool {
		_, err := f.ipvs.DestStats(web, n3)
		return err != nil
	})
	if err := stop(); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	if got := value(t, m.Draining); got != 0 {
		t.Errorf("ravel_destinations_draining = %v, want 0", got)
	}
}

// TestDirectorAnnounces: a VIP is announced when it is bound (and again if it has to be bound
// again), every arp.interval while running, and a failed announcement is counted and retried.
func TestDirectorAnnounces(t *testing.T) {
	f := newFakes()
	garp := &fakeAnnouncer{}
	d, _, m := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, garp)

	d.FullSync()
	if diff := cmp.Diff([]string{"10.54.213.247", "10.54.213.248"}, garp.take()); diff != "" {
		t.Errorf("first sync (-want +got):\n%s", diff)
	}
	d.FullSync()
	if got := garp.take(); len(got) != 0 {
		t.Errorf("second sync announced %v again", got)
	}

	must(t, f.links.DelAddr("ravel0", netip.MustParsePrefix("10.54.213.248/32")))
	garp.fail = []error{errInjected}
	d.FullSync()
	if got := garp.take(); len(got) != 0 {
		t.Errorf("announced %v although the announcement failed", got)
	}
	if got := value(t, m.GARPErrors); got != 1 {
		t.Errorf("ravel_garp_errors_total = %v, want 1", got)
	}
	d.FullSync()
	if diff := cmp.Diff([]string{"10.54.213.248"}, garp.take()); diff != "" {
		t.Errorf("after the rebind (-want +got):\n%s", diff)
	}
	if got := value(t, m.GARPSent); got != 3 {
		t.Errorf("ravel_garp_sent_total = %v, want 3", got)
	}
}

// TestDirectorAnnouncesPeriodically: while running, every VIP is announced every arp.interval.
func TestDirectorAnnouncesPeriodically(t *testing.T) {
	f := newFakes()
	garp := &fakeAnnouncer{}
	cfg := loadConfig(t, "director-static.yaml")
	cfg.ARP.Interval = schema.Duration(20 * time.Millisecond)
	d, _, m := newTestDirector(t, cfg, f, garp)
	stop := runDirector(t, d, nil)
	waitFor(t, "three rounds of announcements", func() bool { return value(t, m.GARPSent) >= 6 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := garp.take()
	n := map[string]int{}
	for _, v := range got {
		n[v]++
	}
	if n["10.54.213.247"] < 3 || n["10.54.213.248"] < 3 {
		t.Errorf("announcements per VIP: %v, want each VIP at least 3 times", n)
	}
}

// TestDirectorRunSourceClosed: a snapshot channel closed before the first snapshot ends Run
// with nothing programmed; closed later (the source stops only when ctx ends), the director
// keeps the last state and keeps running until ctx ends.
func TestDirectorRunSourceClosed(t *testing.T) {
	t.Run("before the first snapshot", func(t *testing.T) {
		f := newFakes()
		d, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
		snaps := make(chan *kube.Snapshot)
		stop, returned := runDirectorDone(t, d, snaps)
		close(snaps)
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return when the source closed before the first snapshot")
		}
		if err := stop(); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if got := f.mutations(); len(got) != 0 {
			t.Errorf("programmed without a snapshot:\n%q", got)
		}
	})
	t.Run("after a snapshot", func(t *testing.T) {
		f := newFakes()
		d, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
		snaps := make(chan *kube.Snapshot)
		stop, returned := runDirectorDone(t, d, snaps)
		snaps <- kubeSnapshot(withChanged(webRef), withNodesChanged)
		waitFor(t, "the snapshot programmed", func() bool { return f.ipvs.Dump() == kubeIPVS })
		close(snaps)
		time.Sleep(100 * time.Millisecond) // time to misbehave: spin on the closed channel, or return
		select {
		case <-returned:
			t.Fatal("Run returned when the source closed")
		default:
		}
		// Not spinning: a closed channel read as an empty snapshot would have emptied the
		// service, and a busy loop would have run many syncs.
		if got := f.ipvs.Calls("Services"); got > 2 {
			t.Errorf("%d full syncs in 100ms after the close: the loop spins on the closed channel", got)
		}
		if diff := cmp.Diff(kubeIPVS, f.ipvs.Dump()); diff != "" {
			t.Errorf("IPVS after the close (-want +got):\n%s", diff)
		}
		if err := stop(); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}
