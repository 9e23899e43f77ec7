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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ravel-lb/ravel/internal/kubeobj"
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
	n := kubeobj.Node("node-a", kubeobj.WithNodeIP("192.0.2.10"), kubeobj.WithLabels(map[string]string{"ravel/pool": "a"}), kubeobj.Ready(true), kubeobj.Unschedulable())
	if _, err := c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node: %v", err)
	}
	svc, err := c.CoreV1().Services(ns).Create(ctx, kubeobj.Service(ns, "web", kubeobj.WithPort("http", 80, 8080)), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Errorf("service got no ClusterIP: %q", svc.Spec.ClusterIP)
	}
	for _, sv := range []*corev1.Service{
		kubeobj.Service(ns, "headless", kubeobj.Headless(), kubeobj.WithPort("http", 80, 80)),
		kubeobj.Service(ns, "ext", kubeobj.ExternalName("example.invalid")),
	} {
		if _, err := c.CoreV1().Services(ns).Create(ctx, sv, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create service %s: %v", sv.Name, err)
		}
	}
	es := kubeobj.EndpointSlice(ns, "web", "web-1", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.1.0.5", "node-a", true, true, false),
		kubeobj.WithEndpoint("10.1.0.6", "", false, true, true))
	if _, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create endpointslice: %v", err)
	}

	// Status given at creation is kept; SetNodeReady flips it through UpdateStatus.
	got, err := c.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !kubeobj.NodeReady(got) || len(got.Status.Addresses) != 1 || !got.Spec.Unschedulable || got.Labels["ravel/pool"] != "a" {
		t.Errorf("node as created: ready=%v addresses=%v unschedulable=%v labels=%v",
			kubeobj.NodeReady(got), got.Status.Addresses, got.Spec.Unschedulable, got.Labels)
	}
	if err := kubeobj.SetNodeReady(ctx, c, "node-a", false); err != nil {
		t.Fatalf("SetNodeReady: %v", err)
	}
	if got, _ = c.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{}); kubeobj.NodeReady(got) {
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

	if _, err := c.CoreV1().Nodes().Create(ctx, kubeobj.Node("node-b", kubeobj.Ready(true)), metav1.CreateOptions{}); err != nil {
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
