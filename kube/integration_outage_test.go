package kube

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ravel-lb/ravel/internal/kubeobj"
)

// These tests stop or restart the shared API server; they don't run in parallel with others.

var deleteNow = metav1.DeleteOptions{}

// webFixture creates two selected nodes, Service web with port http and a slice with a ready
// endpoint on each node, and returns the expected snapshot.
func webFixture(it *itest) *Snapshot {
	it.createNode("n1", "192.0.2.1", it.lb(), kubeobj.Ready(true))
	it.createNode("n2", "192.0.2.2", it.lb(), kubeobj.Ready(true))
	it.createService(kubeobj.Service(it.ns, "web", kubeobj.WithPort("http", 80, 8080)))
	it.putSlice(it.slice("web", "web-1", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.1.0.1", "n1", true, true, false),
		kubeobj.WithEndpoint("10.1.0.2", "n2", true, true, false)))
	n1, n2 := it.node("n1"), it.node("n2")
	return &Snapshot{
		Nodes: map[string]Node{n1: node(n1, "192.0.2.1", true, false, true), n2: node(n2, "192.0.2.2", true, false, true)},
		Services: map[ServiceRef]ServiceState{it.ref("web", "http"): {Status: StatusOK,
			Endpoints: []Endpoint{ep("10.1.0.1", n1, 8080, true), ep("10.1.0.2", n2, 8080, true)}}},
	}
}

func TestKubeAPIServerRestart(t *testing.T) {
	it := newITest(t)
	want := webFixture(it)
	web := it.ref("web", "http")
	src := it.run(Options{NodeSelector: it.selector(), KeepLastEndpoints: true, Refs: []ServiceRef{web}})
	it.expect(want, settle)
	n1, n2 := it.node("n1"), it.node("n2")

	// Written just before the restart: a third endpoint, and n2 cordoned. The Source may see
	// them on its watch or only in the re-list; it must not lose them either way.
	it.putSlice(it.slice("web", "web-1", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.1.0.1", "n1", true, true, false),
		kubeobj.WithEndpoint("10.1.0.2", "n2", true, true, false),
		kubeobj.WithEndpoint("10.1.0.3", "n2", true, true, false)))
	it.updateNode("n2", func(n *corev1.Node) { n.Spec.Unschedulable = true })
	if err := it.srv.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	// Written right after it is back: 10.1.0.1 not ready, n1 NotReady.
	it.putSlice(it.slice("web", "web-1", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.1.0.1", "n1", false, false, false),
		kubeobj.WithEndpoint("10.1.0.2", "n2", true, true, false),
		kubeobj.WithEndpoint("10.1.0.3", "n2", true, true, false)))
	if err := kubeobj.SetNodeReady(it.ctx, it.c, n1, false); err != nil {
		t.Fatal(err)
	}
	want.Nodes[n1] = node(n1, "192.0.2.1", false, false, true)
	want.Nodes[n2] = node(n2, "192.0.2.2", true, true, true)
	want.Services[web] = ServiceState{Status: StatusOK, Endpoints: []Endpoint{
		{Address: ep("10.1.0.1", "", 0, false).Address, NodeName: n1, Port: 8080},
		ep("10.1.0.2", n2, 8080, true), ep("10.1.0.3", n2, 8080, true),
	}}
	it.expect(want, time.Minute)

	// No node twice: the cache holds exactly the API's nodes.
	list, err := it.c.CoreV1().Nodes().List(it.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var api, cached []string
	for _, n := range list.Items {
		api = append(api, n.Name)
	}
	for _, o := range src.nodes.list() {
		cached = append(cached, o.(*corev1.Node).Name)
	}
	slices.Sort(api)
	slices.Sort(cached)
	if !slices.Equal(api, cached) {
		t.Errorf("cached nodes %v, API nodes %v", cached, api)
	}
	// The reset counters are not checked here: after a restart this short the reflector often
	// just re-opens its watch from the last resourceVersion (the new API server accepts the
	// connection while it starts), which is neither an error nor a re-list.
}

func TestKubeSafetyValveOutage(t *testing.T) {
	it := newITest(t)
	want := webFixture(it)
	src := it.run(Options{NodeSelector: it.selector(), KeepLastEndpoints: true, Refs: []ServiceRef{it.ref("web", "http")}})
	it.expect(want, settle)

	it.srv.StopAPIServer()
	stopped := time.Now()
	t.Cleanup(func() {
		if !it.srv.APIServerRunning() {
			_ = it.srv.StartAPIServer()
		}
	})
	stale := *want
	stale.Stale = true
	it.expect(&stale, settle)
	// 30 s without the API: every snapshot keeps the backends, marked stale.
	var maxBackoff float64
	for time.Since(stopped) < 30*time.Second {
		select {
		case s := <-src.Snapshots():
			it.last = it.view(s)
			it.expect(&stale, 0)
		case <-time.After(time.Second):
		}
		for _, w := range src.watchers {
			maxBackoff = max(maxBackoff, counterValue(src.m.backoff.WithLabelValues(w.resource, w.namespace)))
		}
	}
	if maxBackoff <= 0 || maxBackoff > 30 {
		t.Errorf("largest ravel_kube_watch_backoff_seconds during the outage: %v, want (0, 30]", maxBackoff)
	}
	if v := counterValue(src.m.valveActive); v != 1 {
		t.Errorf("ravel_kube_safety_valve_active = %v during the outage", v)
	}
	if v := counterValue(src.m.resets.WithLabelValues("nodes", "", "error")); v < 1 {
		t.Errorf("ravel_kube_watch_resets_total{resource=nodes,reason=error} = %v after 30 s of outage", v)
	}
	if err := it.srv.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	// Back: fresh again (within one capped back-off), and following writes.
	it.expect(want, time.Minute)
	t.Logf("fresh %v after the API server was stopped", time.Since(stopped).Round(time.Second))
	it.putSlice(it.slice("web", "web-1", kubeobj.WithSlicePort("http", 8080), kubeobj.WithEndpoint("10.1.0.2", "n2", true, true, false)))
	want.Services[it.ref("web", "http")] = ServiceState{Status: StatusOK, Endpoints: []Endpoint{ep("10.1.0.2", it.node("n2"), 8080, true)}}
	it.expect(want, settle)
	if v := counterValue(src.m.valveActive); v != 0 {
		t.Errorf("ravel_kube_safety_valve_active = %v after recovery", v)
	}
}

func TestKubeSafetyValveEmptyRelist(t *testing.T) {
	it := newITest(t)
	want := webFixture(it)
	web := it.ref("web", "http")
	const confirm = 3 * time.Second
	src := it.run(Options{NodeSelector: it.selector(), KeepLastEndpoints: true, ValveConfirm: confirm, Refs: []ServiceRef{web}})
	it.expect(want, settle)

	// The control plane comes back without the EndpointSlices (deleted in etcd behind the
	// API server's back, as a restore from an incomplete backup would), the Service still there.
	it.srv.StopAPIServer()
	if n := etcdDeletePrefix(t, it.srv.EtcdURL, "/registry/endpointslices/"+it.ns+"/"); n != 1 {
		t.Fatalf("deleted %d slices in etcd, want 1", n)
	}
	if err := it.srv.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	// Until the zero is confirmed every snapshot keeps the endpoints; then it is published.
	held := false
	deadline := time.After(2 * time.Minute)
	for {
		var s *Snapshot
		select {
		case s = <-src.Snapshots():
		case <-deadline:
			t.Fatalf("never released; last %+v", it.last)
		}
		it.last = it.view(s)
		held = held || counterValue(src.m.valveHeld) == 1
		if st := s.Services[web]; st.Status == StatusNoEndpoints {
			if s.Stale || !held {
				t.Errorf("released with stale=%v, held before=%v", s.Stale, held)
			}
			break
		}
		it.expect(&Snapshot{Nodes: want.Nodes, Services: want.Services, Stale: true}, 0)
	}
	it.expect(&Snapshot{Nodes: want.Nodes, Services: map[ServiceRef]ServiceState{web: {Status: StatusNoEndpoints}}}, 0)
}

func TestKubeRBACRoleSuffices(t *testing.T) {
	it := newITest(t)
	want := webFixture(it)
	data, err := os.ReadFile("rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatalf("rbac.yaml: %v", err)
	}
	role.Name = "ravel-" + it.ns // cluster-scoped: one per test
	user := "ravel-daemon-" + it.ns
	rbac := it.c.RbacV1()
	if _, err := rbac.ClusterRoles().Create(it.ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbac.ClusterRoles().Delete(it.ctx, role.Name, deleteNow) })
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := rbac.ClusterRoleBindings().Create(it.ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbac.ClusterRoleBindings().Delete(it.ctx, binding.Name, deleteNow) })

	src, err := NewSourceFromConfig(it.srv.RESTConfigAs(user), Options{NodeSelector: it.selector(),
		Logger: testLogger(t), Refs: []ServiceRef{it.ref("web", "http")}})
	if err != nil {
		t.Fatal(err)
	}
	// The binding may take a moment to reach the authorizer's cache; first waits for it.
	ctx, cancel := context.WithTimeout(it.ctx, settle)
	defer cancel()
	snap, err := src.first(ctx)
	if err != nil {
		t.Fatalf("as %s with rbac.yaml: %v", user, err)
	}
	it.last = it.view(snap)
	it.expect(want, 0)
}

// statusSeries returns the statuses that ravel_kube_service_status reports as 1 for ref.
func statusSeries(t *testing.T, reg *prometheus.Registry, ref ServiceRef) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "ravel_kube_service_status" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["namespace"] == ref.Namespace && l["service"] == ref.Service && l["port_name"] == ref.PortName && m.GetGauge().GetValue() == 1 {
				out = append(out, l["status"])
			}
		}
	}
	slices.Sort(out)
	return out
}
