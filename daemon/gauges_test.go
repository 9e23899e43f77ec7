package daemon

import (
	"testing"

	"github.com/ravel-lb/ravel/kube"
)

// TestGaugesFollowPartialSyncs: an EndpointSlice change is applied by a partial sync, which
// must move the gauges too: a service whose pods all went unready shows in
// ravel_services_without_realservers at once, not at the next full resync.
func TestGaugesFollowPartialSyncs(t *testing.T) {
	f := newFakes()
	d, _, m := newTestDirector(t, loadConfig(t, "director-colocated.yaml"), f, nil)
	d.OnSnapshot(colocatedSnapshot())
	dests, vipDests := value(t, m.Destinations), value(t, m.VIPDests.WithLabelValues("10.54.213.247"))
	if got := value(t, m.NoRealservers); got != 0 || dests == 0 || vipDests == 0 {
		t.Fatalf("after the first sync: without realservers %v, destinations %v, VIP's serving destinations %v", got, dests, vipDests)
	}
	partial := value(t, m.Syncs.WithLabelValues("partial", "ok"))

	// Every pod of the service unready: its nodes go to weight 0, through the partial path.
	d.OnSnapshot(colocatedSnapshot(withEndpoints(webRef,
		unready("10.244.0.5", 8080, "director-1"), unready("10.244.1.5", 8080, "n1"), unready("10.244.2.5", 8080, "n2")),
		func(s *kube.Snapshot) { s.NodesChanged = false }))
	if value(t, m.Syncs.WithLabelValues("partial", "ok")) != partial+1 {
		t.Fatal("the change did not go through a partial sync")
	}
	if got := value(t, m.NoRealservers); got != 1 {
		t.Errorf("ravel_services_without_realservers = %v after a partial sync emptied the service, want 1", got)
	}
	if got := value(t, m.VIPDests.WithLabelValues("10.54.213.247")); got != 0 {
		t.Errorf("the VIP's serving destinations = %v, want 0", got)
	}

	// Ready again: back to the first figures.
	d.OnSnapshot(colocatedSnapshot(func(s *kube.Snapshot) { s.NodesChanged = false }))
	if got := value(t, m.NoRealservers); got != 0 {
		t.Errorf("ravel_services_without_realservers = %v once pods are ready again, want 0", got)
	}
	if got := value(t, m.VIPDests.WithLabelValues("10.54.213.247")); got != vipDests {
		t.Errorf("the VIP's serving destinations = %v, want %v again", got, vipDests)
	}
	if got := value(t, m.Destinations); got != dests {
		t.Errorf("destinations = %v, want %v again", got, dests)
	}
}
