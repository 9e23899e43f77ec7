package kube

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/kubeobj"
)

// Integration tests against the real kube-apiserver started by TestMain. No kubelet or
// controller runs: the tests write node status and EndpointSlices themselves.

const settle = 20 * time.Second // how long a change may take to show up

func TestKubeEndpointsFollowTheAPI(t *testing.T) {
	it := newITest(t)
	it.createNode("n1", "192.0.2.1", it.lb(), kubeobj.Ready(true))
	it.createNode("n2", "192.0.2.2", it.lb(), kubeobj.Ready(true))
	it.createNode("n3", "192.0.2.3", kubeobj.Ready(true)) // not selected
	it.createService(kubeobj.Service(it.ns, "web", kubeobj.WithPort("http", 80, 8080), kubeobj.WithPort("https", 443, 8443)))
	ports := []kubeobj.EndpointSliceOption{kubeobj.WithSlicePort("http", 8080), kubeobj.WithSlicePort("https", 8443)}
	it.putSlice(it.slice("web", "web-1", append(ports,
		kubeobj.WithEndpoint("10.1.0.1", "n1", true, true, false),
		kubeobj.WithEndpoint("10.1.0.2", "n2", true, true, false))...))

	http, https := it.ref("web", "http"), it.ref("web", "https")
	it.run(Options{NodeSelector: it.selector(), Quiet: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
		KeepLastEndpoints: true, Refs: []ServiceRef{http, https}})
	nodes := map[string]Node{
		it.node("n1"): node(it.node("n1"), "192.0.2.1", true, false, true),
		it.node("n2"): node(it.node("n2"), "192.0.2.2", true, false, true),
		it.node("n3"): node(it.node("n3"), "192.0.2.3", true, false, false),
	}
	n1, n2, n3 := it.node("n1"), it.node("n2"), it.node("n3")
	it.expect(&Snapshot{Nodes: nodes, Services: map[ServiceRef]ServiceState{
		http:  {Status: StatusOK, Endpoints: []Endpoint{ep("10.1.0.1", n1, 8080, true), ep("10.1.0.2", n2, 8080, true)}},
		https: {Status: StatusOK, Endpoints: []Endpoint{ep("10.1.0.1", n1, 8443, true), ep("10.1.0.2", n2, 8443, true)}},
	}}, settle)

	// 10.1.0.2 stops being ready (and serving).
	it.putSlice(it.slice("web", "web-1", append(ports,
		kubeobj.WithEndpoint("10.1.0.1", "n1", true, true, false),
		kubeobj.WithEndpoint("10.1.0.2", "n2", false, false, false))...))
	notReady := func(port uint16) Endpoint {
		return Endpoint{Address: ep("10.1.0.2", "", 0, false).Address, NodeName: n2, Port: port}
	}
	it.expect(&Snapshot{Nodes: nodes, Services: map[ServiceRef]ServiceState{
		http:  {Status: StatusOK, Endpoints: []Endpoint{ep("10.1.0.1", n1, 8080, true), notReady(8080)}},
		https: {Status: StatusOK, Endpoints: []Endpoint{ep("10.1.0.1", n1, 8443, true), notReady(8443)}},
	}}, settle)

	// The pod on n1 moves to n3 (a new pod in a second slice, the old one gone), and 10.1.0.2
	// terminates. n3 has a ready pod but is outside the selector: never a destination.
	it.putSlice(it.slice("web", "web-2", append(ports, kubeobj.WithEndpoint("10.1.0.3", "n3", true, true, false))...))
	it.putSlice(it.slice("web", "web-1", append(ports, kubeobj.WithEndpoint("10.1.0.2", "n2", false, true, true))...))
	terminating := func(port uint16) Endpoint {
		return Endpoint{Address: ep("10.1.0.2", "", 0, false).Address, NodeName: n2, Port: port, Serving: true, Terminating: true}
	}
	got := it.expect(&Snapshot{Nodes: nodes, Services: map[ServiceRef]ServiceState{
		http:  {Status: StatusOK, Endpoints: []Endpoint{terminating(8080), ep("10.1.0.3", n3, 8080, true)}},
		https: {Status: StatusOK, Endpoints: []Endpoint{terminating(8443), ep("10.1.0.3", n3, 8443, true)}},
	}}, settle)
	if ready := got.Services[http].ReadyByNode(); ready[n3] != 1 || slices.Contains(got.EligibleNodes(family.IPv4, true), n3) {
		t.Errorf("n3: ready endpoints %d, eligible nodes %v: a node outside the selector must never be eligible", ready[n3], got.EligibleNodes(family.IPv4, true))
	}
}

func TestKubeNodeChanges(t *testing.T) {
	it := newITest(t)
	it.createNode("n1", "192.0.2.1", it.lb(), kubeobj.Ready(true))
	it.createNode("n2", "192.0.2.2", it.lb(), kubeobj.Ready(true))
	it.createNode("n3", "192.0.2.3", it.lb(), kubeobj.Ready(true))
	it.createService(kubeobj.Service(it.ns, "web", kubeobj.WithPort("http", 80, 8080)))
	it.putSlice(it.slice("web", "web-1", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.1.0.1", "n1", true, true, false),
		kubeobj.WithEndpoint("10.1.0.2", "n2", true, true, false)))
	web := it.ref("web", "http")
	it.run(Options{NodeSelector: it.selector(), KeepLastEndpoints: true, Refs: []ServiceRef{web}})
	n1, n2, n3 := it.node("n1"), it.node("n2"), it.node("n3")
	svcs := map[ServiceRef]ServiceState{web: {Status: StatusOK, Endpoints: []Endpoint{ep("10.1.0.1", n1, 8080, true), ep("10.1.0.2", n2, 8080, true)}}}
	nodes := map[string]Node{
		n1: node(n1, "192.0.2.1", true, false, true),
		n2: node(n2, "192.0.2.2", true, false, true),
		n3: node(n3, "192.0.2.3", true, false, true),
	}
	it.expect(&Snapshot{Nodes: nodes, Services: svcs}, settle)

	// Cordon n1: eligible only with includeCordoned.
	it.updateNode("n1", func(n *corev1.Node) { n.Spec.Unschedulable = true })
	nodes[n1] = node(n1, "192.0.2.1", true, true, true)
	got := it.expect(&Snapshot{Nodes: nodes, Services: svcs}, settle)
	if diff := slices.Compare(got.EligibleNodes(family.IPv4, false), []string{n2, n3}); diff != 0 {
		t.Errorf("eligible without includeCordoned: %v", got.EligibleNodes(family.IPv4, false))
	}
	if diff := slices.Compare(got.EligibleNodes(family.IPv4, true), []string{n1, n2, n3}); diff != 0 {
		t.Errorf("eligible with includeCordoned: %v", got.EligibleNodes(family.IPv4, true))
	}

	// Relabel n2 out of the selector: not eligible, although it runs a ready pod.
	it.updateNode("n2", func(n *corev1.Node) { delete(n.Labels, "ravel-lb") })
	nodes[n2] = node(n2, "192.0.2.2", true, false, false)
	got = it.expect(&Snapshot{Nodes: nodes, Services: svcs}, settle)
	if got.Services[web].ReadyByNode()[n2] != 1 || slices.Contains(got.EligibleNodes(family.IPv4, true), n2) {
		t.Errorf("n2 outside the selector is eligible: %v", got.EligibleNodes(family.IPv4, true))
	}

	// n3 becomes NotReady (status written as a kubelet would), then is deleted.
	if err := kubeobj.SetNodeReady(it.ctx, it.c, n3, false); err != nil {
		t.Fatal(err)
	}
	nodes[n3] = node(n3, "192.0.2.3", false, false, true)
	it.expect(&Snapshot{Nodes: nodes, Services: svcs}, settle)
	if err := it.c.CoreV1().Nodes().Delete(it.ctx, n3, deleteNow); err != nil {
		t.Fatal(err)
	}
	delete(nodes, n3)
	it.expect(&Snapshot{Nodes: nodes, Services: svcs}, settle)
}

func TestKubeServiceLifecycle(t *testing.T) {
	it := newITest(t)
	it.createNode("n1", "192.0.2.1", it.lb(), kubeobj.Ready(true))
	n1 := it.node("n1")
	it.createService(kubeobj.Service(it.ns, "web", kubeobj.WithPort("http", 80, 8080)))
	it.createService(kubeobj.Service(it.ns, "headless", kubeobj.Headless(), kubeobj.WithPort("http", 80, 8080)))
	it.createService(kubeobj.Service(it.ns, "ext", kubeobj.ExternalName("db.example.invalid")))
	it.createService(kubeobj.Service(it.ns, "idle", kubeobj.WithPort("", 80, 8080)))
	for _, svc := range []string{"web", "headless", "later"} {
		it.putSlice(it.slice(svc, svc+"-1", kubeobj.WithSlicePort("http", 8080), kubeobj.WithEndpoint("10.1.0.1", "n1", true, true, false)))
	}
	web, grpc, headless, ext, later, idle := it.ref("web", "http"), it.ref("web", "grpc"), it.ref("headless", "http"),
		it.ref("ext", ""), it.ref("later", "http"), it.ref("idle", "")
	reg := prometheus.NewRegistry()
	it.run(Options{NodeSelector: it.selector(), KeepLastEndpoints: true, Registerer: reg,
		Refs: []ServiceRef{web, grpc, headless, ext, later, idle}})
	nodes := map[string]Node{n1: node(n1, "192.0.2.1", true, false, true)}
	ok := ServiceState{Status: StatusOK, Endpoints: []Endpoint{ep("10.1.0.1", n1, 8080, true)}}
	svcs := map[ServiceRef]ServiceState{
		web:      ok,
		grpc:     {Status: StatusNoSuchPort},
		headless: {Status: StatusHeadless},
		ext:      {Status: StatusExternalName},
		later:    {Status: StatusNotFound},
		idle:     {Status: StatusNoEndpoints},
	}
	it.expect(&Snapshot{Nodes: nodes, Services: svcs}, settle)
	if got := statusSeries(t, reg, web); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("ravel_kube_service_status for web: %v", got)
	}
	if got := statusSeries(t, reg, later); !slices.Equal(got, []string{"not-found"}) {
		t.Errorf("ravel_kube_service_status for later: %v", got)
	}

	// The missing service appears (its slice was there first).
	it.createService(kubeobj.Service(it.ns, "later", kubeobj.WithPort("http", 80, 8080)))
	svcs[later] = ok
	it.expect(&Snapshot{Nodes: nodes, Services: svcs}, settle)
	if got := statusSeries(t, reg, later); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("ravel_kube_service_status for later once created: %v", got)
	}

	// Delete web (its slice stays: no garbage collector runs here) and create it again.
	it.deleteService("web")
	svcs[web], svcs[grpc] = ServiceState{Status: StatusNotFound}, ServiceState{Status: StatusNotFound}
	it.expect(&Snapshot{Nodes: nodes, Services: svcs}, settle)
	it.createService(kubeobj.Service(it.ns, "web", kubeobj.WithPort("http", 80, 8080)))
	svcs[web], svcs[grpc] = ok, ServiceState{Status: StatusNoSuchPort}
	it.expect(&Snapshot{Nodes: nodes, Services: svcs}, settle)
}

// TestKubeDualStack: on the real API server, a dual-stack Service with an IPv4 and an IPv6
// EndpointSlice, followed in both families: each ref gets its own family's endpoints, and
// the nodes both their InternalIPs (one IPv6-only node is eligible for IPv6 only).
func TestKubeDualStack(t *testing.T) {
	it := newITest(t)
	it.createNode("n1", "192.0.2.1", it.lb(), kubeobj.Ready(true), kubeobj.WithNodeIP("2001:db8::1"))
	it.createNode("n2", "2001:db8::2", it.lb(), kubeobj.Ready(true))
	it.createService(kubeobj.Service(it.ns, "web", kubeobj.WithPort("http", 80, 8080)))
	it.putSlice(it.slice("web", "web-v4", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.1.0.1", "n1", true, true, false)))
	it.putSlice(it.slice("web", "web-v6", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("fd00:1::1", "n1", true, true, false),
		kubeobj.WithEndpoint("fd00:1::2", "n2", true, true, false)))
	v4 := it.ref("web", "http")
	v6 := v4
	v6.Family = family.IPv6
	it.run(Options{NodeSelector: it.selector(), Quiet: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Refs: []ServiceRef{v4, v6}})
	n1, n2 := it.node("n1"), it.node("n2")
	node1 := node(n1, "192.0.2.1", true, false, true)
	node1.Address6 = netip.MustParseAddr("2001:db8::1")
	node2 := Node{Name: n2, Address6: netip.MustParseAddr("2001:db8::2"), Ready: true, Selected: true}
	got := it.expect(&Snapshot{Nodes: map[string]Node{n1: node1, n2: node2}, Services: map[ServiceRef]ServiceState{
		v4: {Status: StatusOK, Endpoints: []Endpoint{ep("10.1.0.1", n1, 8080, true)}},
		v6: {Status: StatusOK, Endpoints: []Endpoint{ep("fd00:1::1", n1, 8080, true), ep("fd00:1::2", n2, 8080, true)}},
	}}, settle)
	if e4, e6 := got.EligibleNodes(family.IPv4, false), got.EligibleNodes(family.IPv6, false); !slices.Equal(e4, []string{n1}) || !slices.Equal(e6, []string{n1, n2}) {
		t.Errorf("eligible: IPv4 %v, IPv6 %v; want [n1] and [n1 n2]", e4, e6)
	}
}
