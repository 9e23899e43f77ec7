package kapitest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func TestServer(t *testing.T) {
	start := time.Now()
	s := Start(t)
	t.Logf("etcd + kube-apiserver ready in %v (dir %s)", time.Since(start).Round(time.Millisecond), s.Dir)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The kubeconfig file works on its own.
	kc, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	var c kubernetes.Interface = kubernetes.NewForConfigOrDie(kc)
	v, err := c.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if v.GitVersion != Version {
		t.Errorf("server version %q, want %q", v.GitVersion, Version)
	}

	ns := s.Namespace(t)
	n := Node("node-a", WithNodeIP("192.0.2.10"), WithLabels(map[string]string{"ravel/pool": "a"}), Ready(true), Unschedulable())
	if _, err := c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node: %v", err)
	}
	svc, err := c.CoreV1().Services(ns).Create(ctx, Service(ns, "web", WithPort("http", 80, 8080)), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Errorf("service got no ClusterIP: %q", svc.Spec.ClusterIP)
	}
	for _, sv := range []*corev1.Service{
		Service(ns, "headless", Headless(), WithPort("http", 80, 80)),
		Service(ns, "ext", ExternalName("example.invalid")),
	} {
		if _, err := c.CoreV1().Services(ns).Create(ctx, sv, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create service %s: %v", sv.Name, err)
		}
	}
	es := EndpointSlice(ns, "web", "web-1", WithSlicePort("http", 8080),
		WithEndpoint("10.1.0.5", "node-a", true, true, false),
		WithEndpoint("10.1.0.6", "", false, true, true))
	if _, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create endpointslice: %v", err)
	}

	// Status given at creation is kept; SetNodeReady flips it through UpdateStatus.
	got, err := c.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !nodeReady(got) || len(got.Status.Addresses) != 1 || !got.Spec.Unschedulable || got.Labels["ravel/pool"] != "a" {
		t.Errorf("node as created: ready=%v addresses=%v unschedulable=%v labels=%v",
			nodeReady(got), got.Status.Addresses, got.Spec.Unschedulable, got.Labels)
	}
	if err := SetNodeReady(ctx, c, "node-a", false); err != nil {
		t.Fatalf("SetNodeReady: %v", err)
	}
	if got, _ = c.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{}); nodeReady(got) {
		t.Errorf("node still ready after SetNodeReady(false)")
	}

	// RBAC is on: an impersonated user without bindings may not list nodes.
	_, err = kubernetes.NewForConfigOrDie(s.RESTConfigAs("lb-daemon")).CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("unprivileged list nodes: %v, want Forbidden", err)
	}

	// An informer started now must survive the restart and see changes made after it.
	factory := informers.NewSharedInformerFactory(s.Client(), 0)
	nodeInf := factory.Core().V1().Nodes().Informer()
	infStop := make(chan struct{})
	factory.Start(infStop)
	if !cache.WaitForCacheSync(ctx.Done(), nodeInf.HasSynced) {
		t.Fatal("informer sync")
	}

	restart := time.Now()
	if err := s.RestartAPIServer(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("API server restarted in %v", time.Since(restart).Round(time.Millisecond))

	c = s.Client()
	nss, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasName(nss.Items, func(o corev1.Namespace) string { return o.Name }, ns) {
		t.Errorf("namespace %s lost across restart", ns)
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasName(nodes.Items, func(o corev1.Node) string { return o.Name }, "node-a") {
		t.Errorf("node lost across restart: %v", nodes.Items)
	}
	slices, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(slices.Items) != 1 || len(slices.Items[0].Endpoints) != 2 {
		t.Errorf("endpointslices after restart: %v %v", slices, err)
	}

	if _, err := c.CoreV1().Nodes().Create(ctx, Node("node-b", Ready(true)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "informer to see node-b after restart", func() bool {
		_, ok, _ := nodeInf.GetStore().GetByKey("node-b")
		return ok
	})
	close(infStop)
	factory.Shutdown() // waits for the informer goroutines

	// Stop the API server for a while: requests fail, etcd stays up, data survives.
	s.StopAPIServer()
	if s.APIServerRunning() {
		t.Error("APIServerRunning after StopAPIServer")
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, err = c.CoreV1().Nodes().Get(short, "node-a", metav1.GetOptions{})
	cancelShort()
	if err == nil {
		t.Error("Get succeeded while the API server was stopped")
	}
	etcdPID, apiPID := s.PIDs()
	if etcdPID == 0 || apiPID != 0 {
		t.Errorf("PIDs while stopped: etcd %d apiserver %d", etcdPID, apiPID)
	}
	if err := s.StartAPIServer(); err != nil {
		t.Fatalf("StartAPIServer: %v", err)
	}
	if _, err := c.CoreV1().Nodes().Get(ctx, "node-b", metav1.GetOptions{}); err != nil {
		t.Errorf("node-b after stop/start: %v", err)
	}

	// Stop leaves nothing behind.
	etcdPID, apiPID = s.PIDs()
	dir := s.Dir
	s.Stop()
	s.Stop() // idempotent
	for _, pid := range []int{etcdPID, apiPID} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	if procs := processesMentioning(dir); len(procs) > 0 {
		t.Errorf("processes still running with %s in their command line: %v", dir, procs)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s not removed: %v", dir, err)
	}
	if err := s.StartAPIServer(); err == nil {
		t.Error("StartAPIServer after Stop succeeded")
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasName[T any](items []T, name func(T) string, want string) bool {
	for _, it := range items {
		if name(it) == want {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processesMentioning lists the PIDs whose command line contains s.
func processesMentioning(s string) []string {
	var out []string
	entries, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, strings.Split(e, "/")[2])
		}
	}
	return out
}

// The builders need no server.

func TestNodeBuilder(t *testing.T) {
	n := Node("n1", WithNodeIP("192.0.2.1"), WithNodeIP("2001:db8::1"), Ready(false),
		WithLabels(map[string]string{"a": "b"}), WithAnnotations(map[string]string{"x": "y"}))
	if n.Name != "n1" || n.Labels["a"] != "b" || n.Labels[corev1.LabelHostname] != "n1" || n.Annotations["x"] != "y" {
		t.Errorf("meta: %+v", n.ObjectMeta)
	}
	if len(n.Status.Addresses) != 2 || n.Status.Addresses[1].Type != corev1.NodeInternalIP {
		t.Errorf("addresses: %v", n.Status.Addresses)
	}
	if nodeReady(n) || len(n.Status.Conditions) != 1 || n.Spec.Unschedulable {
		t.Errorf("conditions %v unschedulable %v", n.Status.Conditions, n.Spec.Unschedulable)
	}
	if setReadyCondition(n, false, time.Now()) {
		t.Error("setReadyCondition(false) on a not-ready node reported a change")
	}
	if !setReadyCondition(n, true, time.Now()) || !nodeReady(n) || len(n.Status.Conditions) != 1 {
		t.Errorf("setReadyCondition(true): %v", n.Status.Conditions)
	}
}

func TestServiceBuilder(t *testing.T) {
	s := Service("ns", "svc", WithPort("http", 80, 8080), WithProtocolPort("dns", corev1.ProtocolUDP, 53, 5353))
	if s.Namespace != "ns" || s.Spec.Type != corev1.ServiceTypeClusterIP || len(s.Spec.Ports) != 2 ||
		s.Spec.Ports[0].TargetPort.IntValue() != 8080 || s.Spec.Ports[1].Protocol != corev1.ProtocolUDP {
		t.Errorf("service: %+v", s.Spec)
	}
	if h := Service("ns", "h", Headless()); h.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("headless: %+v", h.Spec)
	}
	if e := Service("ns", "e", ExternalName("x.example")); e.Spec.Type != corev1.ServiceTypeExternalName || e.Spec.ExternalName != "x.example" {
		t.Errorf("externalname: %+v", e.Spec)
	}
}

func TestEndpointSliceBuilder(t *testing.T) {
	ep := WithEndpoint("10.0.0.1", "n1", true, true, false)
	a := EndpointSlice("ns", "svc", "svc-a", ep, WithSlicePort("http", 8080))
	b := EndpointSlice("ns", "svc", "svc-b", ep)
	*a.Endpoints[0].Conditions.Ready = false
	if !*b.Endpoints[0].Conditions.Ready {
		t.Error("slices built from the same option share condition pointers")
	}
	if a.AddressType != discoveryv1.AddressTypeIPv4 || a.Labels[discoveryv1.LabelServiceName] != "svc" ||
		*a.Endpoints[0].NodeName != "n1" || *a.Ports[0].Port != 8080 || *a.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("slice: %+v", a)
	}
	if v6 := EndpointSlice("ns", "svc", "v6", WithEndpoint("2001:db8::5", "", true, true, false)); v6.AddressType != discoveryv1.AddressTypeIPv6 || v6.Endpoints[0].NodeName != nil {
		t.Errorf("v6 slice: %+v", v6)
	}
}

func TestNamespacePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"TestFoo/sub_case#01":   "testfoo-sub-case-01-",
		"9lives":                "t-9lives-",
		strings.Repeat("a", 80): strings.Repeat("a", 50) + "-",
	} {
		if got := namespacePrefix(in); got != want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}
