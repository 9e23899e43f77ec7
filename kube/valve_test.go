package kube

import (
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ravel-lb/ravel/internal/kubeobj"
)

// Safety-valve rule tests (see valve.go), with the stores written directly.

var bothReady = webOK(ep("10.0.0.1", "n1", 8080, true), ep("10.0.0.2", "n2", 8080, true))

func TestValveHoldsEmptyRelistUntilConfirmed(t *testing.T) {
	h, _, _, _ := startBase(t, baseOptions())

	// The re-list after a reconnect has no EndpointSlice although the Service is there: hold.
	must(t, h.s.slices["ns"].Replace(nil, "5"))
	diffSnap(t, &Snapshot{Nodes: baseNodes, Services: bothReady, Stale: true}, h.next())
	if v := counterValue(h.s.m.valveActive); v != 1 {
		t.Errorf("ravel_kube_safety_valve_active = %v", v)
	}

	// The confirming list comes ValveConfirm later; it finds endpoints (the cache lags): keep.
	h.mu.Lock()
	h.confirmReady = 2
	h.mu.Unlock()
	h.settle()
	h.clk.Step(9 * time.Second)
	h.none()
	h.clk.Step(time.Second)
	h.none()
	h.mu.Lock()
	calls := h.confirmCalls
	h.confirmReady = 0
	h.mu.Unlock()
	if calls != 1 {
		t.Fatalf("%d confirming lists, want 1", calls)
	}

	// A second confirming list, ValveConfirm later, agrees with the re-list: release.
	h.settle()
	h.clk.Step(10 * time.Second)
	diffSnap(t, webChanged(StatusNoEndpoints), h.next())
	if v := counterValue(h.s.m.valveActive); v != 0 {
		t.Errorf("ravel_kube_safety_valve_active = %v after release", v)
	}
}

// TestValveHoldsRelistSeenBeforeItsNotice: the loop may resolve a service after an
// EndpointSlice re-list has replaced the store's content and before the store has reported
// the re-list (a Service re-list just marked the service dirty, as after an API server
// restart, when the watches come back one by one). The loss still came with a re-list: hold.
// (Before the stores counted their re-lists, that step published the service empty.)
func TestValveHoldsRelistSeenBeforeItsNotice(t *testing.T) {
	h, _, _, _ := startBase(t, baseOptions())
	st := h.s.slices["ns"]
	notice := st.onChange
	var inWindow *Snapshot
	st.onChange = func(touched []runtime.Object, relist bool) {
		if relist && inWindow == nil {
			h.s.markDirty([]ServiceRef{webHTTP}, false) // what the Service re-list reports
			inWindow = h.next()
		}
		notice(touched, relist)
	}
	must(t, st.Replace(nil, "5"))
	diffSnap(t, &Snapshot{Nodes: baseNodes, Services: bothReady, Stale: true}, inWindow)
}

func TestValveReleasesWhenEndpointsReturn(t *testing.T) {
	h, _, _, _ := startBase(t, baseOptions())
	must(t, h.s.slices["ns"].Replace(nil, "5"))
	if s := h.next(); !s.Stale {
		t.Fatal("not stale after an empty re-list")
	}
	// The slice comes back with one endpoint moved to another node: published at once.
	must(t, h.s.slices["ns"].Add(webSlice("web-2", kubeobj.WithEndpoint("10.0.0.3", "n2", true, true, false))))
	diffSnap(t, &Snapshot{
		Nodes:    baseNodes,
		Services: webOK(ep("10.0.0.3", "n2", 8080, true)),
		Changed:  []ServiceRef{webHTTP},
	}, h.next())
}

func TestValveReleasesDeletedService(t *testing.T) {
	h, _, svcs, _ := startBase(t, baseOptions())
	must(t, h.s.slices["ns"].Replace(nil, "5"))
	if s := h.next(); !s.Stale {
		t.Fatal("not stale after an empty re-list")
	}
	must(t, h.s.services["ns"].Delete(svcs[0]))
	diffSnap(t, webChanged(StatusNotFound), h.next())
}

func TestValveTrustsWatchEvents(t *testing.T) {
	h, _, _, eps := startBase(t, baseOptions())
	// A deletion seen on a healthy watch is a real scale-down: no hold.
	must(t, h.s.slices["ns"].Delete(eps[0]))
	diffSnap(t, webChanged(StatusNoEndpoints), h.next())
	// A re-list that lists endpoints, none ready, is an explicit answer too.
	must(t, h.s.slices["ns"].Add(eps[0]))
	h.next()
	must(t, h.s.slices["ns"].Replace([]any{webSlice("web-1", kubeobj.WithEndpoint("10.0.0.1", "n1", false, false, true))}, "7"))
	got := h.next()
	if got.Stale || got.Services[webHTTP].Status != StatusNoEndpoints {
		t.Errorf("non-ready re-list: %+v", got)
	}
}

func TestValveDuringOutage(t *testing.T) {
	h, _, _, eps := startBase(t, baseOptions())

	// The API goes away: same endpoints, marked stale.
	h.apiDown("endpointslices/ns")
	diffSnap(t, &Snapshot{Nodes: baseNodes, Services: bothReady, Stale: true}, h.next())
	if v := counterValue(h.s.m.backoff.WithLabelValues("endpointslices", "ns")); v != 0.8 {
		t.Errorf("ravel_kube_watch_backoff_seconds = %v, want 0.8", v)
	}
	// A loss while some watch fails is held too.
	must(t, h.s.slices["ns"].Delete(eps[0]))
	h.none()
	// No confirmation while the API is down.
	h.settle()
	h.clk.Step(30 * time.Second)
	h.none()
	h.mu.Lock()
	if h.confirmCalls != 0 {
		t.Errorf("%d confirming lists while the API is down", h.confirmCalls)
	}
	h.mu.Unlock()

	// Back: still stale (held) until the API has been healthy for ValveConfirm and a list agrees.
	h.watcher("endpointslices/ns").healthy()
	h.none()
	if v := counterValue(h.s.m.backoff.WithLabelValues("endpointslices", "ns")); v != 0 {
		t.Errorf("ravel_kube_watch_backoff_seconds = %v when healthy", v)
	}
	h.settle()
	h.clk.Step(10 * time.Second)
	diffSnap(t, webChanged(StatusNoEndpoints), h.next())
}

func TestValveOutageWithoutLoss(t *testing.T) {
	h, nodes, _, _ := startBase(t, baseOptions())
	h.apiDown("nodes")
	if s := h.next(); !s.Stale {
		t.Fatal("not stale while the API is down")
	}
	// The reconnect re-lists the same content: fresh again, nothing else changed.
	must(t, h.s.nodes.Replace([]any{nodes[0], nodes[1]}, "9"))
	diffSnap(t, &Snapshot{Nodes: baseNodes, Services: bothReady}, h.next())
	if v := counterValue(h.s.m.resets.WithLabelValues("nodes", "", "relist")); v != 1 {
		t.Errorf("relist resets = %v, want 1", v)
	}
	if v := counterValue(h.s.m.resets.WithLabelValues("nodes", "", "error")); v != 1 {
		t.Errorf("error resets = %v, want 1", v)
	}
}

func TestValveConfirmErrorKeepsHolding(t *testing.T) {
	h, _, _, _ := startBase(t, baseOptions())
	h.mu.Lock()
	h.confirmErr = errors.New("the server is currently unable to handle the request")
	h.mu.Unlock()
	must(t, h.s.slices["ns"].Replace(nil, "5"))
	h.next()
	h.settle()
	h.clk.Step(10 * time.Second)
	h.none()
	h.mu.Lock()
	h.confirmErr = nil
	h.mu.Unlock()
	h.settle()
	h.clk.Step(10 * time.Second)
	if s := h.next(); s.Stale || s.Services[webHTTP].Status != StatusNoEndpoints {
		t.Errorf("after a successful confirmation: %+v", s)
	}
}

func TestValveOff(t *testing.T) {
	opts := baseOptions()
	opts.KeepLastEndpoints = false
	h, _, _, _ := startBase(t, opts)
	h.apiDown("endpointslices/ns")
	h.none() // not stale: the valve is off
	must(t, h.s.slices["ns"].Replace(nil, "5"))
	diffSnap(t, webChanged(StatusNoEndpoints), h.next())
}

func TestEachWatchRecoversOnItsOwnRelist(t *testing.T) {
	h, nodes, svcs, eps := startBase(t, baseOptions())
	relists := map[string]func(){
		"nodes":             func() { must(t, h.s.nodes.Replace([]any{nodes[0], nodes[1]}, "9")) },
		"services/ns":       func() { must(t, h.s.services["ns"].Replace([]any{svcs[0]}, "9")) },
		"endpointslices/ns": func() { must(t, h.s.slices["ns"].Replace([]any{eps[0]}, "9")) },
	}
	if len(relists) != len(h.s.watchers) {
		t.Fatalf("%d watchers, test covers %d", len(h.s.watchers), len(relists))
	}
	for name, relist := range relists {
		h.apiDown(name)
		if s := h.next(); !s.Stale {
			t.Fatalf("%s down: not stale", name)
		}
		relist()
		diffSnap(t, &Snapshot{Nodes: baseNodes, Services: bothReady}, h.next())
	}
}

func TestValveHoldsEmptyNodeRelist(t *testing.T) {
	h, nodes, _, _ := startBase(t, baseOptions())

	// A re-list with no node at all would leave every service without a destination: hold.
	must(t, h.s.nodes.Replace(nil, "5"))
	diffSnap(t, &Snapshot{Nodes: baseNodes, Services: bothReady, Stale: true}, h.next())
	if v := counterValue(h.s.m.valveHeld); v != 0 {
		t.Errorf("ravel_kube_safety_valve_held_services = %v: the node list is not a service", v)
	}
	// One node is listed again: released with what the API says.
	must(t, h.s.nodes.Add(nodes[0]))
	diffSnap(t, &Snapshot{Nodes: map[string]Node{"n1": baseNodes["n1"]}, Services: bothReady, NodesChanged: true}, h.next())

	// Empty again (a re-list), then confirmed empty: published.
	must(t, h.s.nodes.Replace(nil, "6"))
	if s := h.next(); !s.Stale || len(s.Nodes) != 1 {
		t.Fatalf("empty node re-list: %+v", s)
	}
	h.settle()
	h.clk.Step(10 * time.Second)
	diffSnap(t, &Snapshot{Nodes: map[string]Node{}, Services: bothReady, NodesChanged: true}, h.next())
}
