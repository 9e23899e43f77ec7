package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/kapitest"
	"github.com/ravel-lb/ravel/internal/kubeobj"
)

// One real kube-apiserver + etcd for the package (kapitest skips the tests that need it, with
// a message, when the binaries are missing and RAVEL_REQUIRE_KAPI is unset).
func TestMain(m *testing.M) { os.Exit(kapitest.RunShared(m)) }

// itest is one integration test: its own namespace, its own nodes (named after the namespace,
// deleted at the end) and a node selector label only its nodes can carry.
type itest struct {
	t   *testing.T
	srv *kapitest.Server
	c   kubernetes.Interface
	ns  string
	ctx context.Context
	src *Source
	// last is the last snapshot read, as seen by view.
	last *Snapshot
}

func newITest(t *testing.T) *itest {
	t.Helper()
	srv := kapitest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	it := &itest{t: t, srv: srv, c: srv.Client(), ns: srv.Namespace(t), ctx: ctx}
	t.Cleanup(it.deleteNodes)
	return it
}

// selector is the node selector of this test; lb is the label that satisfies it.
func (it *itest) selector() map[string]string { return map[string]string{"ravel-lb": it.ns} }
func (it *itest) lb() kubeobj.MetaOption      { return kubeobj.WithLabels(it.selector()) }
func (it *itest) node(n string) string        { return it.ns + "-" + n }
func (it *itest) ref(svc, port string) ServiceRef {
	return ServiceRef{Namespace: it.ns, Service: svc, PortName: port, Family: family.IPv4}
}

// run starts a Source on the shared API server; it is stopped at the end of the test.
func (it *itest) run(opts Options) *Source {
	it.t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(it.t)
	}
	src, err := NewSourceFromConfig(it.srv.RESTConfig(), opts)
	if err != nil {
		it.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	it.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			it.t.Errorf("Run: %v", err)
		}
	})
	it.src = src
	return src
}

// view is what the tests compare: only this test's nodes, and without Changed/NodesChanged,
// which depend on how the API's events were coalesced (the loop tests cover them).
func (it *itest) view(s *Snapshot) *Snapshot {
	v := *s
	v.Nodes = maps.Collect(func(yield func(string, Node) bool) {
		for k, n := range s.Nodes {
			if strings.HasPrefix(k, it.ns+"-") && !yield(k, n) {
				return
			}
		}
	})
	v.Changed, v.NodesChanged = nil, false
	return &v
}

// expect waits until the last published snapshot, as seen by view, equals want. With a zero
// timeout it checks the last snapshot read.
func (it *itest) expect(want *Snapshot, timeout time.Duration) *Snapshot {
	it.t.Helper()
	diff := "no snapshot yet"
	if it.last != nil {
		if diff = cmp.Diff(want, it.last, addrCmp); diff == "" {
			return it.last
		}
	}
	if timeout == 0 {
		it.t.Fatalf("unexpected snapshot (-want +last):\n%s", diff)
	}
	deadline := time.After(timeout)
	for {
		select {
		case s, ok := <-it.src.Snapshots():
			if !ok {
				it.t.Fatal("Snapshots closed")
			}
			it.last = it.view(s)
			if diff = cmp.Diff(want, it.last, addrCmp); diff == "" {
				return it.last
			}
		case <-deadline:
			it.t.Fatalf("no matching snapshot after %v (-want +last):\n%s", timeout, diff)
		}
	}
}

func (it *itest) createNode(name, ip string, opts ...kubeobj.NodeOption) {
	it.t.Helper()
	n := kubeobj.Node(it.node(name), append([]kubeobj.NodeOption{kubeobj.WithNodeIP(ip)}, opts...)...)
	if _, err := it.c.CoreV1().Nodes().Create(it.ctx, n, metav1.CreateOptions{}); err != nil {
		it.t.Fatalf("create node: %v", err)
	}
}

// updateNode applies f to the node (spec and labels; status through kubeobj.SetNodeReady).
func (it *itest) updateNode(name string, f func(*corev1.Node)) {
	it.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := it.c.CoreV1().Nodes().Get(it.ctx, it.node(name), metav1.GetOptions{})
		if err != nil {
			return err
		}
		f(n)
		_, err = it.c.CoreV1().Nodes().Update(it.ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		it.t.Fatalf("update node %s: %v", name, err)
	}
}

func (it *itest) createService(s *corev1.Service) {
	it.t.Helper()
	if _, err := it.c.CoreV1().Services(it.ns).Create(it.ctx, s, metav1.CreateOptions{}); err != nil {
		it.t.Fatalf("create service %s: %v", s.Name, err)
	}
}

func (it *itest) deleteService(name string) {
	it.t.Helper()
	if err := it.c.CoreV1().Services(it.ns).Delete(it.ctx, name, metav1.DeleteOptions{}); err != nil {
		it.t.Fatalf("delete service %s: %v", name, err)
	}
}

// slice builds an EndpointSlice of this test's namespace with endpoints on this test's nodes:
// node names given to WithEndpoint are short ("n1").
func (it *itest) slice(svc, name string, opts ...kubeobj.EndpointSliceOption) *discoveryv1.EndpointSlice {
	s := kubeobj.EndpointSlice(it.ns, svc, name, opts...)
	for i := range s.Endpoints {
		if n := s.Endpoints[i].NodeName; n != nil {
			full := it.node(*n)
			s.Endpoints[i].NodeName = &full
		}
	}
	return s
}

// putSlice creates or replaces an EndpointSlice.
func (it *itest) putSlice(s *discoveryv1.EndpointSlice) {
	it.t.Helper()
	api := it.c.DiscoveryV1().EndpointSlices(it.ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := api.Get(it.ctx, s.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = api.Create(it.ctx, s, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		s.ResourceVersion = cur.ResourceVersion
		_, err = api.Update(it.ctx, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		it.t.Fatalf("put endpointslice %s: %v", s.Name, err)
	}
}

func (it *itest) deleteNodes() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := it.c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return // the API server may be the thing under test
	}
	for _, n := range list.Items {
		if strings.HasPrefix(n.Name, it.ns+"-") {
			_ = it.c.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
		}
	}
}

// etcdDeletePrefix deletes every etcd key under prefix through etcd's JSON gateway, behind the
// API server's back (as a restore from an incomplete backup would), and returns the count.
func etcdDeletePrefix(t *testing.T, etcdURL, prefix string) int {
	t.Helper()
	end := []byte(prefix)
	end[len(end)-1]++
	b64 := base64.StdEncoding.EncodeToString
	body := fmt.Sprintf(`{"key":%q,"range_end":%q}`, b64([]byte(prefix)), b64(end))
	resp, err := http.Post(etcdURL+"/v3/kv/deleterange", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("etcd deleterange: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Deleted string `json:"deleted"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("etcd deleterange: HTTP %d, %v", resp.StatusCode, err)
	}
	var n int
	fmt.Sscan(out.Deleted, &n)
	return n
}
