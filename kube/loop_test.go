package kube

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/kubeobj"
)

// Loop tests: the Source's publishing and safety valve, with the stores written directly.

var (
	webHTTP = ServiceRef{Namespace: "ns", Service: "web", PortName: "http", Family: family.IPv4}
	lbLabel = kubeobj.WithLabels(map[string]string{"ravel/lb": "true"})
)

func baseObjects() ([]*corev1.Node, []*corev1.Service, []*discoveryv1.EndpointSlice) {
	nodes := []*corev1.Node{
		kubeobj.Node("n1", lbLabel, kubeobj.WithNodeIP("192.0.2.1"), kubeobj.Ready(true)),
		kubeobj.Node("n2", lbLabel, kubeobj.WithNodeIP("192.0.2.2"), kubeobj.Ready(true)),
	}
	svcs := []*corev1.Service{kubeobj.Service("ns", "web", kubeobj.WithPort("http", 80, 8080))}
	eps := []*discoveryv1.EndpointSlice{webSlice("web-1",
		kubeobj.WithEndpoint("10.0.0.1", "n1", true, true, false),
		kubeobj.WithEndpoint("10.0.0.2", "n2", true, true, false))}
	return nodes, svcs, eps
}

func webSlice(name string, opts ...kubeobj.EndpointSliceOption) *discoveryv1.EndpointSlice {
	return kubeobj.EndpointSlice("ns", "web", name, append([]kubeobj.EndpointSliceOption{kubeobj.WithSlicePort("http", 8080)}, opts...)...)
}

func baseOptions() Options {
	return Options{
		NodeSelector:      map[string]string{"ravel/lb": "true"},
		KeepLastEndpoints: true,
		ValveConfirm:      10 * time.Second,
		Refs:              []ServiceRef{webHTTP},
	}
}

func webOK(eps ...Endpoint) map[ServiceRef]ServiceState {
	return map[ServiceRef]ServiceState{webHTTP: {Status: StatusOK, Endpoints: eps}}
}

var baseNodes = map[string]Node{
	"n1": node("n1", "192.0.2.1", true, false, true),
	"n2": node("n2", "192.0.2.2", true, false, true),
}

// startBase starts a harness with opts over baseObjects (the first snapshot read) and returns
// it with the objects.
func startBase(t *testing.T, opts Options) (*harness, []*corev1.Node, []*corev1.Service, []*discoveryv1.EndpointSlice) {
	t.Helper()
	h := newHarness(t, opts)
	nodes, svcs, eps := baseObjects()
	h.start(nodes, svcs, eps)
	return h, nodes, svcs, eps
}

// webChanged is the snapshot after web, on the base nodes, changed to status st without
// endpoints.
func webChanged(st Status) *Snapshot {
	return &Snapshot{
		Nodes:    baseNodes,
		Services: map[ServiceRef]ServiceState{webHTTP: {Status: st}},
		Changed:  []ServiceRef{webHTTP},
	}
}

func diffSnap(t *testing.T, want, got *Snapshot) {
	t.Helper()
	if diff := cmp.Diff(want, got, addrCmp); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
}

func TestLoopPublishesChanges(t *testing.T) {
	h := newHarness(t, baseOptions())
	nodes, svcs, eps := baseObjects()
	first := h.start(nodes, svcs, eps)
	diffSnap(t, &Snapshot{
		Nodes:        baseNodes,
		Services:     webOK(ep("10.0.0.1", "n1", 8080, true), ep("10.0.0.2", "n2", 8080, true)),
		Changed:      []ServiceRef{webHTTP},
		NodesChanged: true,
	}, first)

	// An endpoint turns not ready: only the service changed.
	must(t, h.s.slices["ns"].Update(webSlice("web-1",
		kubeobj.WithEndpoint("10.0.0.1", "n1", true, true, false),
		kubeobj.WithEndpoint("10.0.0.2", "n2", false, false, false))))
	diffSnap(t, &Snapshot{
		Nodes: baseNodes,
		Services: webOK(ep("10.0.0.1", "n1", 8080, true),
			Endpoint{Address: ep("10.0.0.2", "", 0, false).Address, NodeName: "n2", Port: 8080}),
		Changed: []ServiceRef{webHTTP},
	}, h.next())

	// A status heartbeat (same fields once transformed) publishes nothing; an ADDED for a known
	// node is an update.
	hb := kubeobj.Node("n1", lbLabel, kubeobj.WithNodeIP("192.0.2.1"), kubeobj.Ready(true))
	hb.ResourceVersion = "99"
	must(t, h.s.nodes.Add(hb))
	h.none()

	// Cordon n2: nodes changed, services didn't.
	must(t, h.s.nodes.Update(kubeobj.Node("n2", lbLabel, kubeobj.WithNodeIP("192.0.2.2"), kubeobj.Ready(true), kubeobj.Unschedulable())))
	got := h.next()
	if !got.NodesChanged || len(got.Changed) != 0 || !got.Nodes["n2"].Cordoned || len(got.Nodes) != 2 {
		t.Errorf("after cordon: %+v", got)
	}
	if got.Nodes["n2"].Eligible(family.IPv4, false) || !got.Nodes["n2"].Eligible(family.IPv4, true) {
		t.Error("cordoned n2: eligible only with includeCordoned")
	}
	// A re-list with the same nodes never duplicates one.
	must(t, h.s.nodes.Replace([]any{
		kubeobj.Node("n1", lbLabel, kubeobj.WithNodeIP("192.0.2.1"), kubeobj.Ready(true)),
		kubeobj.Node("n2", lbLabel, kubeobj.WithNodeIP("192.0.2.2"), kubeobj.Ready(true), kubeobj.Unschedulable()),
	}, "2"))
	h.none()
	if n := len(h.s.nodes.list()); n != 2 {
		t.Errorf("%d nodes in the store after re-list, want 2", n)
	}
}

func TestLoopCoalesces(t *testing.T) {
	opts := baseOptions()
	opts.Quiet, opts.MaxDelay = 100*time.Millisecond, time.Second
	h, _, _, _ := startBase(t, opts)

	// A burst of three writes is one snapshot, once quiet (the debouncer's own test covers
	// MaxDelay).
	for _, ip := range []string{"10.0.0.3", "10.0.0.4", "10.0.0.5"} {
		must(t, h.s.slices["ns"].Add(webSlice("web-"+ip, kubeobj.WithEndpoint(ip, "n1", true, true, false))))
	}
	h.settle()
	h.none()
	h.clk.Step(99 * time.Millisecond)
	h.none()
	h.clk.Step(time.Millisecond)
	got := h.next()
	if n := len(got.Services[webHTTP].Endpoints); n != 5 {
		t.Errorf("%d endpoints after the burst, want 5", n)
	}
	h.none()
}

func TestSlowConsumerGetsLatest(t *testing.T) {
	opts := baseOptions()
	opts.Refs = append(opts.Refs, ServiceRef{Namespace: "ns", Service: "api", PortName: "http", Family: family.IPv4})
	h := newHarness(t, opts)
	nodes, svcs, eps := baseObjects()
	svcs = append(svcs, kubeobj.Service("ns", "api", kubeobj.WithPort("http", 80, 8080)))
	h.start(nodes, svcs, eps)

	// Three snapshots are published while nobody reads: the channel keeps the last, whose
	// Changed covers all three.
	must(t, h.s.slices["ns"].Delete(eps[0]))
	waitPublished(t, h.s, 2)
	must(t, h.s.slices["ns"].Add(kubeobj.EndpointSlice("ns", "api", "api-1", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.0.1.1", "n1", true, true, false))))
	waitPublished(t, h.s, 3)
	must(t, h.s.nodes.Delete(nodes[1]))
	waitPublished(t, h.s, 4)
	got := h.next()
	want := &Snapshot{
		Nodes: map[string]Node{"n1": baseNodes["n1"]},
		Services: map[ServiceRef]ServiceState{
			webHTTP: {Status: StatusNoEndpoints},
			{Namespace: "ns", Service: "api", PortName: "http", Family: family.IPv4}: {Status: StatusOK, Endpoints: []Endpoint{ep("10.0.1.1", "n1", 8080, true)}},
		},
		Changed:      []ServiceRef{{Namespace: "ns", Service: "api", PortName: "http", Family: family.IPv4}, webHTTP},
		NodesChanged: true,
	}
	diffSnap(t, want, got)
	h.none()
}

// waitPublished waits until the Source has published n snapshots in all.
func waitPublished(t *testing.T, s *Source, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(s.m.published) < float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("published %v snapshots, want %d", counterValue(s.m.published), n)
		}
		time.Sleep(time.Millisecond)
	}
}
