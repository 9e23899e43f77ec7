package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/internal/kubeobj"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/schema"
)

// KubeFeed on a real kube-apiserver (run in TestKapiHelperProcess, a child process, because
// kapitest keeps a goroutine for the life of its process and this package's TestMain is
// goleak's). Each subtest has its own namespace, nodes, Prometheus registry and feed, and
// checks in its cleanup that every goroutine it started (feed, Sources, reflectors, HTTP
// connections) has ended with its context.
//
//	RAVEL_REQUIRE_KAPI=1 go test ./daemon -run KubeFeed -count=1 -v
func TestKubeFeed(t *testing.T) {
	base := startKapiHelper(t)
	t.Run("ServiceAddedSwapsWithoutGap", func(t *testing.T) { testFeedServiceAdded(t, base) })
	t.Run("SameWatchesNoNewSource", func(t *testing.T) { testFeedSameWatches(t, base) })
	t.Run("RemovedServiceSeriesGo", func(t *testing.T) { testFeedRemovedSeries(t, base) })
	t.Run("UnsyncedSourceNeverReplaces", func(t *testing.T) { testFeedUnsynced(t, base) })
	t.Run("TwoReloadsInARow", func(t *testing.T) { testFeedTwoReloads(t, base) })
	t.Run("SharedServiceStatusSeries", func(t *testing.T) { testFeedSharedStatus(t, base) })
	t.Run("ReloadDuringBackoffDoesNotStall", func(t *testing.T) { testFeedBackoffNoStall(t, base) })
}

// feedSettle bounds how long a change or a swap may take to show on the stream (they take
// milliseconds; this is for -race on a loaded machine).
const feedSettle = 10 * time.Second

// 1. A reload that adds B: B's endpoints arrive in a snapshot that asks for a full recompute,
// and no snapshot of the swap, old or new Source's, lacks A's endpoints, while A's slice keeps
// changing so that both Sources publish during the swap.
func testFeedServiceAdded(t *testing.T, base *rest.Config) {
	e := newFeedEnv(t, base)
	e.service("web-a", "10.1.0.1", "10.1.0.2")
	e.service("web-b", "10.2.0.1")
	e.start(feedConfig{services: []string{"web-a"}})
	a, b := e.ref("web-a"), e.ref("web-b")
	first := e.next()
	e.wantReady(first, a, "10.1.0.1", "10.1.0.2")
	if !first.NodesChanged {
		t.Error("first snapshot: NodesChanged = false")
	}
	if _, ok := first.Services[b]; ok {
		t.Fatal("first snapshot has web-b before any reload")
	}

	// Churn on A during the swap: a third endpoint flaps.
	churnCtx, cancelChurn := context.WithCancel(e.ctx)
	churnDone := make(chan struct{})
	var churned int
	go func() {
		defer close(churnDone)
		for churnCtx.Err() == nil {
			churned++
			_ = e.putSliceErr(churnCtx, e.slice("web-a", readyEP("10.1.0.1", "n1"), readyEP("10.1.0.2", "n2"),
				ep("10.1.0.3", "n1", churned%2 == 0)))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	stopChurn := func() int {
		cancelChurn()
		<-churnDone
		return churned
	}
	defer stopChurn()
	time.Sleep(50 * time.Millisecond) // the old Source publishes the churn before the reload

	e.reload(feedConfig{services: []string{"web-a", "web-b"}})
	var during int
	got := e.until("web-b in a snapshot", func(s *kube.Snapshot) bool {
		during++
		e.wantReadyAmong(s, a, "10.1.0.1", "10.1.0.2") // every snapshot, before and at the swap
		_, ok := s.Services[b]
		return ok
	})
	t.Logf("%d snapshots read until web-b appeared; %d slice updates", during, stopChurn())
	e.wantReady(got, b, "10.2.0.1")
	if !got.NodesChanged {
		t.Error("the snapshot that brings web-b has NodesChanged = false: the roles would not recompute everything")
	}
	if !slices.Contains(got.Changed, b) || !slices.Contains(got.Changed, a) {
		t.Errorf("the snapshot that brings web-b lists Changed = %v, want every ref (%v, %v)", got.Changed, a, b)
	}
	if n := e.buildCount(); n != 2 {
		t.Errorf("%d Sources built, want 2", n)
	}

	// The new Source feeds the stream: a change to B arrives.
	e.putSlice(e.slice("web-b", readyEP("10.2.0.1", "n1"), readyEP("10.2.0.2", "n2")))
	e.until("web-b's second endpoint", func(s *kube.Snapshot) bool {
		e.wantReadyAmong(s, a, "10.1.0.1", "10.1.0.2")
		return hasReady(s, b, "10.2.0.1", "10.2.0.2")
	})
}

// 2. Reloads that change nothing watched (IPVS options, a static service, the services' order,
// includeCordoned) build no Source, and their commit does nothing; a changed debounce does
// build one (the counter works), and a Prepare whose commit never comes changes nothing.
func testFeedSameWatches(t *testing.T, base *rest.Config) {
	e := newFeedEnv(t, base)
	e.service("web-a", "10.1.0.1")
	e.service("web-b", "10.2.0.1")
	e.start(feedConfig{services: []string{"web-a", "web-b"}})
	a := e.ref("web-a")
	e.wantReady(e.next(), a, "10.1.0.1")

	same := []feedConfig{
		{services: []string{"web-a", "web-b"}, scheduler: "rr"},
		{services: []string{"web-b", "web-a"}},
		{services: []string{"web-a", "web-b"}, static: true},
		{services: []string{"web-a", "web-b"}, includeCordoned: true},
	}
	for _, c := range same {
		commit, err := e.feed.Prepare(e.config(c))
		if err != nil {
			t.Fatalf("Prepare(%+v): %v", c, err)
		}
		ctx, cancel := context.WithTimeout(e.ctx, time.Second)
		commit(ctx)
		cancel()
		if n := e.buildCount(); n != 1 {
			t.Fatalf("after a reload to %+v: %d Sources built, want 1 (the watches did not change)", c, n)
		}
	}

	// A changed debounce is a change of the watches; its commit is dropped (the role refused
	// the config), so the running watches stay and the next identical config is still a no-op.
	if _, err := e.feed.Prepare(e.config(feedConfig{services: []string{"web-a", "web-b"}, debounce: "{quiet: 1ms, maxDelay: 5ms}"})); err != nil {
		t.Fatal(err)
	}
	if n := e.buildCount(); n != 2 {
		t.Fatalf("a changed debounce built %d Sources in all, want 2", n)
	}
	if _, err := e.feed.Prepare(e.config(feedConfig{services: []string{"web-a", "web-b"}})); err != nil {
		t.Fatal(err)
	}
	if n := e.buildCount(); n != 2 {
		t.Fatalf("the running config again after an uncommitted Prepare: %d Sources built in all, want 2", n)
	}

	// The stream still follows the first Source.
	e.putSlice(e.slice("web-a", readyEP("10.1.0.1", "n1"), readyEP("10.1.0.9", "n2")))
	e.until("web-a's new endpoint", func(s *kube.Snapshot) bool { return hasReady(s, a, "10.1.0.1", "10.1.0.9") })
}

// 3. A reload that removes B: once the new Source took over, the registry has no status series
// for B, and still has A's.
func testFeedRemovedSeries(t *testing.T, base *rest.Config) {
	e := newFeedEnv(t, base)
	e.service("web-a", "10.1.0.1")
	e.service("web-b", "10.2.0.1")
	e.start(feedConfig{services: []string{"web-a", "web-b"}})
	a, b := e.ref("web-a"), e.ref("web-b")
	s := e.next()
	e.wantReady(s, a, "10.1.0.1")
	e.wantReady(s, b, "10.2.0.1")
	e.wantStatusSeries(a, "ok")
	e.wantStatusSeries(b, "ok")

	e.reload(feedConfig{services: []string{"web-a"}})
	// HandOver runs in the feed before the new Source's first snapshot is sent: once it is
	// read, the series are final.
	s = e.until("a snapshot without web-b", func(s *kube.Snapshot) bool {
		e.wantReady(s, a, "10.1.0.1")
		_, ok := s.Services[b]
		return !ok
	})
	if !s.NodesChanged {
		t.Error("the new Source's first snapshot has NodesChanged = false")
	}
	e.wantStatusSeries(a, "ok")
	e.wantStatusSeries(b)

	// A's series keep following the new Source.
	e.putSlice(e.slice("web-a", ep("10.1.0.1", "n1", false)))
	e.until("web-a without ready endpoints", func(s *kube.Snapshot) bool {
		return s.Services[a].Status == kube.StatusNoEndpoints
	})
	e.wantStatusSeries(a, "no-ready-endpoints")
	e.wantStatusSeries(b)
}

// 4. A new Source that cannot reach its API server never syncs, so it never takes over: the
// old one keeps feeding the stream. A later reload replaces the stuck one.
func testFeedUnsynced(t *testing.T, base *rest.Config) {
	e := newFeedEnv(t, base)
	e.service("web-a", "10.1.0.1", "10.1.0.2")
	e.service("web-b", "10.2.0.1")
	e.service("web-c", "10.3.0.1")
	e.start(feedConfig{services: []string{"web-a"}})
	a, b, c := e.ref("web-a"), e.ref("web-b"), e.ref("web-c")
	e.wantReady(e.next(), a, "10.1.0.1", "10.1.0.2")

	e.setTarget(&rest.Config{Host: "https://127.0.0.1:1", TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	e.reload(feedConfig{services: []string{"web-a", "web-b"}})
	if n := e.buildCount(); n != 2 {
		t.Fatalf("%d Sources built, want 2", n)
	}

	noB := func(s *kube.Snapshot) {
		if _, ok := s.Services[b]; ok {
			t.Fatalf("a snapshot has web-b: the Source that cannot sync took over:\n%+v", s)
		}
	}
	e.putSlice(e.slice("web-a", readyEP("10.1.0.1", "n1"), ep("10.1.0.2", "n2", false)))
	e.until("10.1.0.2 not ready", func(s *kube.Snapshot) bool {
		noB(s)
		return hasReady(s, a, "10.1.0.1")
	})
	e.putSlice(e.slice("web-a", readyEP("10.1.0.1", "n1"), readyEP("10.1.0.2", "n2"), readyEP("10.1.0.3", "n1")))
	e.until("10.1.0.3 ready", func(s *kube.Snapshot) bool {
		noB(s)
		return hasReady(s, a, "10.1.0.1", "10.1.0.2", "10.1.0.3")
	})
	// The stuck Source has had time to try (and fail) several times by now.
	e.quiet(time.Second, noB)
	if p := e.feed.PendingFor(); p < time.Second {
		t.Errorf("PendingFor = %s while the new watches cannot sync, want at least 1s", p)
	}
	// It is on standby: its failures must not show as the running watches' back-off.
	backoffs := e.gaugeValues("ravel_kube_watch_backoff_seconds")
	if len(backoffs) == 0 {
		t.Error("no ravel_kube_watch_backoff_seconds series: the running Source's are gone")
	}
	for _, v := range backoffs {
		if !strings.HasSuffix(v, "=0") {
			t.Errorf("while the unreachable Source is pending: ravel_kube_watch_backoff_seconds %s, want 0 (the running watches are healthy)", v)
		}
	}

	// A reload to a reachable server replaces the stuck Source.
	e.setTarget(nil)
	e.reload(feedConfig{services: []string{"web-a", "web-c"}})
	s := e.until("web-c in a snapshot", func(s *kube.Snapshot) bool {
		noB(s)
		e.wantReady(s, a, "10.1.0.1", "10.1.0.2", "10.1.0.3")
		_, ok := s.Services[c]
		return ok
	})
	e.wantReady(s, c, "10.3.0.1")
	e.wantStatusSeries(b)
	e.wantStatusSeries(c, "ok")
	if p := e.feed.PendingFor(); p != 0 {
		t.Errorf("PendingFor = %s after the takeover, want 0", p)
	}
}

// 5. A second reload committed right after the first, before the first's Source synced: the
// stream ends up following the second config.
func testFeedTwoReloads(t *testing.T, base *rest.Config) {
	e := newFeedEnv(t, base)
	e.service("web-a", "10.1.0.1")
	e.service("web-b", "10.2.0.1")
	e.service("web-c", "10.3.0.1")
	e.start(feedConfig{services: []string{"web-a"}})
	a, b, c := e.ref("web-a"), e.ref("web-b"), e.ref("web-c")
	e.wantReady(e.next(), a, "10.1.0.1")

	e.reload(feedConfig{services: []string{"web-a", "web-b"}})
	e.reload(feedConfig{services: []string{"web-a", "web-c"}})
	if n := e.buildCount(); n != 3 {
		t.Fatalf("%d Sources built, want 3", n)
	}
	var sawB bool
	s := e.until("web-c in a snapshot", func(s *kube.Snapshot) bool {
		e.wantReady(s, a, "10.1.0.1")
		_, ok := s.Services[b]
		sawB = sawB || ok
		_, ok = s.Services[c]
		return ok
	})
	if sawB {
		// Legitimate only if the first reload's Source synced before the second commit.
		t.Log("web-b was published before web-c: the first reload's Source synced before the second commit")
	}
	if _, ok := s.Services[b]; ok {
		t.Fatalf("the snapshot that brings web-c still has web-b: %+v", s.Services)
	}
	e.wantReady(s, c, "10.3.0.1")
	// Nothing of the first reload's Source shows up afterwards.
	e.quiet(500*time.Millisecond, func(s *kube.Snapshot) {
		if _, ok := s.Services[b]; ok {
			t.Fatalf("web-b came back after web-c: %+v", s.Services)
		}
	})
	e.putSlice(e.slice("web-c", readyEP("10.3.0.1", "n1"), readyEP("10.3.0.2", "n2")))
	e.until("web-c's second endpoint", func(s *kube.Snapshot) bool { return hasReady(s, c, "10.3.0.1", "10.3.0.2") })
	e.wantStatusSeries(a, "ok")
	e.wantStatusSeries(b)
	e.wantStatusSeries(c, "ok")
}

// 6. A service that both the old and the new Source watch changes status while the old one
// still holds the change (its debounce), and the reload changes the debounce: after the swap
// the registry must hold A's current status only, not the old Source's last one beside it
// (each Source moved the series from the status it had published itself, so before HandOver
// made the new Source take the series over, A kept both no-ready-endpoints and ok).
func testFeedSharedStatus(t *testing.T, base *rest.Config) {
	e := newFeedEnv(t, base)
	e.service("web-a", "10.1.0.1")
	e.putSlice(e.slice("web-a", ep("10.1.0.1", "n1", false)))
	slow := "{quiet: 10s, maxDelay: 10s}"
	e.start(feedConfig{services: []string{"web-a"}, debounce: slow})
	a := e.ref("web-a")
	if s := e.next(); s.Services[a].Status != kube.StatusNoEndpoints {
		t.Fatalf("web-a: status %q, want %q", s.Services[a].Status, kube.StatusNoEndpoints)
	}
	e.wantStatusSeries(a, "no-ready-endpoints")

	// The endpoint becomes ready; the old Source holds the change for 10 s, the reload's Source
	// (no debounce) lists it at once and takes over before that.
	e.putSlice(e.slice("web-a", readyEP("10.1.0.1", "n1")))
	start := time.Now()
	e.reload(feedConfig{services: []string{"web-a"}})
	e.until("web-a ready", func(s *kube.Snapshot) bool { return hasReady(s, a, "10.1.0.1") })
	if time.Since(start) >= 10*time.Second {
		t.Skip("the swap took longer than the old Source's debounce: the case is not exercised")
	}
	e.wantStatusSeries(a, "ok")
}

// ---- environment ----

// feedConfig describes a director config of the test's namespace.
type feedConfig struct {
	services        []string // Kubernetes services followed (port "http"), in this order
	debounce        string   // kubernetes.debounce; empty means {quiet: 0s, maxDelay: 0s}
	scheduler       string   // ipvs.scheduler of every service; empty keeps the default
	static          bool     // adds a static service
	includeCordoned bool
}

// feedVIPs gives each service its own VIP, whatever the order.
var feedVIPs = map[string]string{"web-a": "10.200.0.1", "web-b": "10.200.0.2", "web-c": "10.200.0.3", "static": "10.200.0.9"}

type feedEnv struct {
	t    *testing.T
	ctx  context.Context
	rc   *rest.Config // the API server, through conns
	c    kubernetes.Interface
	ns   string
	reg  *prometheus.Registry
	log  *slog.Logger
	feed *KubeFeed

	mu     sync.Mutex
	builds int
	target *rest.Config // where the next Source points; nil means rc
}

func newFeedEnv(t *testing.T, base *rest.Config) *feedEnv {
	t.Helper()
	// Registered first, so it runs last: after the feed's context ended and the connections
	// were closed, nothing this test started may still run.
	before := goleak.IgnoreCurrent() // the goroutines that exist now, not at cleanup time
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	conns := &connTracker{}
	t.Cleanup(conns.closeAll)
	var logs syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("feed and Source logs:\n%s", logs.String())
		}
	})
	rc := rest.CopyConfig(base)
	rc.Dial = conns.dial
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	e := &feedEnv{t: t, ctx: ctx, rc: rc, c: c, reg: prometheus.NewRegistry(),
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	ns, err := c.CoreV1().Namespaces().Create(ctx, kubeobj.Namespace("", kubeobj.WithGenerateName("kubefeed-")), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.ns = ns.Name
	// Namespaces are never deleted without a namespace controller; nodes are global, so remove
	// this test's.
	for i, n := range []string{"n1", "n2"} {
		node := kubeobj.Node(e.node(n), kubeobj.WithNodeIP(fmt.Sprintf("192.0.2.%d", i+1)),
			kubeobj.WithLabels(map[string]string{"ravel-lb": e.ns}), kubeobj.Ready(true))
		if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = c.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{})
		})
	}
	return e
}

func (e *feedEnv) node(short string) string { return e.ns + "-" + short }

func (e *feedEnv) ref(svc string) kube.ServiceRef {
	return kube.ServiceRef{Namespace: e.ns, Service: svc, PortName: "http"}
}

// service creates a Service with port http (80 → 8080) and an EndpointSlice whose endpoints
// are ready, alternately on n1 and n2.
func (e *feedEnv) service(name string, addrs ...string) {
	e.t.Helper()
	if _, err := e.c.CoreV1().Services(e.ns).Create(e.ctx, kubeobj.Service(e.ns, name, kubeobj.WithPort("http", 80, 8080)), metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	var eps []feedEndpoint
	for i, a := range addrs {
		eps = append(eps, readyEP(a, []string{"n1", "n2"}[i%2]))
	}
	e.putSlice(e.slice(name, eps...))
}

type feedEndpoint struct {
	addr, node string
	ready      bool
}

func readyEP(addr, node string) feedEndpoint { return feedEndpoint{addr, node, true} }
func ep(addr, node string, ready bool) feedEndpoint {
	return feedEndpoint{addr, node, ready}
}

// slice is the one EndpointSlice of svc, port http → 8080.
func (e *feedEnv) slice(svc string, eps ...feedEndpoint) *discoveryv1.EndpointSlice {
	opts := []kubeobj.EndpointSliceOption{kubeobj.WithSlicePort("http", 8080)}
	for _, p := range eps {
		opts = append(opts, kubeobj.WithEndpoint(p.addr, e.node(p.node), p.ready, p.ready, false))
	}
	return kubeobj.EndpointSlice(e.ns, svc, svc+"-1", opts...)
}

func (e *feedEnv) putSlice(s *discoveryv1.EndpointSlice) {
	e.t.Helper()
	if err := e.putSliceErr(e.ctx, s); err != nil {
		e.t.Fatalf("put endpointslice %s: %v", s.Name, err)
	}
}

// putSliceErr creates or replaces an EndpointSlice (safe from any goroutine).
func (e *feedEnv) putSliceErr(ctx context.Context, s *discoveryv1.EndpointSlice) error {
	api := e.c.DiscoveryV1().EndpointSlices(e.ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := api.Get(ctx, s.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = api.Create(ctx, s, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		s.ResourceVersion = cur.ResourceVersion
		_, err = api.Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
}

// config parses a director config with the daemon's loader.
func (e *feedEnv) config(c feedConfig) *config.Config {
	e.t.Helper()
	deb := c.debounce
	if deb == "" {
		deb = "{quiet: 0s, maxDelay: 0s}"
	}
	var svcs strings.Builder
	ipvs := ""
	if c.scheduler != "" {
		ipvs = fmt.Sprintf(", ipvs: {scheduler: %s}", c.scheduler)
	}
	for _, s := range c.services {
		fmt.Fprintf(&svcs, "  - {name: %s, vip: %s, port: 80, kubernetes: {namespace: %s, service: %s, portName: http}%s}\n",
			s, feedVIPs[s], e.ns, s, ipvs)
	}
	if c.static {
		fmt.Fprintf(&svcs, "  - {name: static, vip: %s, port: 53, backends: [{address: 10.0.1.7}]}\n", feedVIPs["static"])
	}
	yaml := fmt.Sprintf(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director-1, role: director, interface: eth0, vipInterface: ravel0}
kubernetes:
  nodeSelector: {ravel-lb: %s}
  includeCordoned: %t
  debounce: %s
vipPool: [10.200.0.1, 10.200.0.2, 10.200.0.3, 10.200.0.9]
services:
%s`, e.ns, c.includeCordoned, deb, svcs.String())
	cfg, err := config.Parse("kubefeed.yaml", []byte(yaml))
	if err != nil {
		e.t.Fatalf("config:\n%s\n%v", yaml, err)
	}
	return cfg
}

// feedOptions is cmd/ravel's kubeOptions.
func feedOptions(cfg *config.Config) kube.Options {
	var targets []schema.KubeTarget
	for _, s := range cfg.Services {
		if s.Kubernetes != nil {
			targets = append(targets, *s.Kubernetes)
		}
	}
	return kube.OptionsFrom(cfg.Kubernetes, targets)
}

// build is the feed's build function, as cmd/ravel's kubeSource but on e's API server (or the
// target set by setTarget), counting its calls.
func (e *feedEnv) build(cfg *config.Config, standby bool) (*kube.Source, error) {
	e.mu.Lock()
	e.builds++
	target := e.target
	e.mu.Unlock()
	if target == nil {
		target = e.rc
	}
	opts := feedOptions(cfg)
	opts.Logger = e.log
	opts.Registerer = e.reg
	opts.Standby = standby
	return kube.NewSourceFromConfig(target, opts)
}

func (e *feedEnv) buildCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.builds
}

func (e *feedEnv) setTarget(rc *rest.Config) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.target = rc
}

// start starts the feed with c; it ends with the test.
func (e *feedEnv) start(c feedConfig) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	e.feed = NewKubeFeed(feedOptions, e.build, e.log)
	feed := e.feed
	e.t.Cleanup(func() { // runs before conns.closeAll and goleak's check
		cancel()
		start := time.Now()
		feed.Wait()
		e.t.Logf("the feed and its Sources stopped %s after cancel", time.Since(start).Round(time.Millisecond))
	})
	if err := e.feed.Start(ctx, e.config(c)); err != nil {
		e.t.Fatal(err)
	}
}

// reload is what a reload does (cmd/ravel's applyWith): Prepare, then commit.
func (e *feedEnv) reload(c feedConfig) {
	e.t.Helper()
	commit, err := e.feed.Prepare(e.config(c))
	if err != nil {
		e.t.Fatalf("Prepare: %v", err)
	}
	commit(e.ctx)
}

// next reads the next snapshot of the stream.
func (e *feedEnv) next() *kube.Snapshot {
	e.t.Helper()
	select {
	case s := <-e.feed.Snapshots():
		if s == nil {
			e.t.Fatal("nil snapshot")
		}
		return s
	case <-time.After(feedSettle):
		e.t.Fatalf("no snapshot after %v", feedSettle)
	}
	return nil
}

// until reads snapshots until cond holds for one, and returns it.
func (e *feedEnv) until(what string, cond func(*kube.Snapshot) bool) *kube.Snapshot {
	e.t.Helper()
	deadline := time.After(feedSettle)
	var last *kube.Snapshot
	for {
		select {
		case s := <-e.feed.Snapshots():
			if s == nil {
				e.t.Fatal("nil snapshot")
			}
			if cond(s) {
				return s
			}
			last = s
		case <-deadline:
			e.t.Fatalf("%s: not within %v; last snapshot read: %+v", what, feedSettle, last)
		}
	}
}

// quiet reads the snapshots published during d and passes each to check.
func (e *feedEnv) quiet(d time.Duration, check func(*kube.Snapshot)) {
	e.t.Helper()
	end := time.After(d)
	for {
		select {
		case s := <-e.feed.Snapshots():
			check(s)
		case <-end:
			return
		}
	}
}

// hasReady reports whether ref's status is ok and its ready endpoints are exactly addrs.
func hasReady(s *kube.Snapshot, ref kube.ServiceRef, addrs ...string) bool {
	st, ok := s.Services[ref]
	return ok && st.Status == kube.StatusOK && slices.Equal(readyAddrs(st), sortedAddrs(addrs))
}

func (e *feedEnv) wantReady(s *kube.Snapshot, ref kube.ServiceRef, addrs ...string) {
	e.t.Helper()
	if !hasReady(s, ref, addrs...) {
		st, ok := s.Services[ref]
		e.t.Fatalf("%s/%s: present %t, status %q, ready %v; want ok with %v (snapshot NodesChanged=%t Changed=%v)",
			ref.Service, ref.PortName, ok, st.Status, readyAddrs(st), sortedAddrs(addrs), s.NodesChanged, s.Changed)
	}
}

// wantReadyAmong checks that ref's status is ok and addrs are among its ready endpoints.
func (e *feedEnv) wantReadyAmong(s *kube.Snapshot, ref kube.ServiceRef, addrs ...string) {
	e.t.Helper()
	st, ok := s.Services[ref]
	ready := readyAddrs(st)
	if ok && st.Status == kube.StatusOK && !slices.ContainsFunc(addrs, func(a string) bool { return !slices.Contains(ready, a) }) {
		return
	}
	e.t.Fatalf("%s/%s: present %t, status %q, ready %v; want ok with at least %v (snapshot NodesChanged=%t Changed=%v)",
		ref.Service, ref.PortName, ok, st.Status, ready, addrs, s.NodesChanged, s.Changed)
}

func readyAddrs(st kube.ServiceState) []string {
	var out []string
	for _, p := range st.Endpoints {
		if p.Ready {
			out = append(out, p.Address.String())
		}
	}
	return sortedAddrs(out)
}

func sortedAddrs(a []string) []string {
	out := slices.Clone(a)
	slices.SortFunc(out, func(x, y string) int { return netip.MustParseAddr(x).Compare(netip.MustParseAddr(y)) })
	return out
}

// statusSeries returns the statuses of ref's ravel_kube_service_status series, and fails if a
// series is not 1.
func (e *feedEnv) statusSeries(ref kube.ServiceRef) []string {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
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
			if l["namespace"] != ref.Namespace || l["service"] != ref.Service || l["port_name"] != ref.PortName {
				continue
			}
			if v := m.GetGauge().GetValue(); v != 1 {
				e.t.Errorf("ravel_kube_service_status%v = %v, want 1", l, v)
			}
			out = append(out, l["status"])
		}
	}
	slices.Sort(out)
	return out
}

// wantStatusSeries checks that ref's status series are exactly statuses (none if empty).
func (e *feedEnv) wantStatusSeries(ref kube.ServiceRef, statuses ...string) {
	e.t.Helper()
	got := e.statusSeries(ref)
	slices.Sort(statuses)
	if !slices.Equal(got, statuses) {
		e.t.Errorf("ravel_kube_service_status of %s/%s: statuses %q, want %q", ref.Service, ref.PortName, got, statuses)
	}
}

// gaugeValues lists the series of a gauge family as "labels=value", for logs.
func (e *feedEnv) gaugeValues(name string) []string {
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l []string
			for _, p := range m.GetLabel() {
				l = append(l, p.GetName()+"="+p.GetValue())
			}
			out = append(out, fmt.Sprintf("{%s}=%g", strings.Join(l, ","), m.GetGauge().GetValue()))
		}
	}
	return out
}

// connTracker dials the API server and closes every connection at the end of the test, so that
// no idle HTTP connection (and its read loop) outlives it; client-go does not cache transports
// whose config has a Dial function.
type connTracker struct {
	mu     sync.Mutex
	d      net.Dialer
	conns  []net.Conn
	closed bool
}

func (ct *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := ct.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.closed {
		c.Close()
		return nil, errors.New("test over")
	}
	ct.conns = append(ct.conns, c)
	return c, nil
}

func (ct *connTracker) closeAll() {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.closed = true
	for _, c := range ct.conns {
		c.Close()
	}
	ct.conns = nil
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// 7. A reload while the previous reload's Source sleeps in client-go's retry back-off (its API
// server is unreachable) must not stall the stream: that sleep ignores the context, and a feed
// that waited for the abandoned Source to stop forwarded nothing until the back-off ended (up
// to 30 s; e2e scenario 52 found it). The reflector retries at 0.8, 2.4, 5.6 and 12 s (kube's
// watchBackoff): 6.5 s in, it sleeps until 12 s, so the running watches' update and the new
// Source's takeover must both arrive well before that sleep could have ended.
func testFeedBackoffNoStall(t *testing.T, base *rest.Config) {
	e := newFeedEnv(t, base)
	e.service("web-a", "10.1.0.1", "10.1.0.2")
	e.service("web-b", "10.2.0.1")
	e.service("web-c", "10.3.0.1")
	e.start(feedConfig{services: []string{"web-a"}})
	a, c := e.ref("web-a"), e.ref("web-c")
	e.wantReady(e.next(), a, "10.1.0.1", "10.1.0.2")

	e.setTarget(&rest.Config{Host: "https://127.0.0.1:1", TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	e.reload(feedConfig{services: []string{"web-a", "web-b"}})
	e.quiet(6500*time.Millisecond, func(*kube.Snapshot) {}) // the pending Source fails and backs off

	e.setTarget(nil)
	start := time.Now()
	e.reload(feedConfig{services: []string{"web-a", "web-c"}})
	e.putSlice(e.slice("web-a", readyEP("10.1.0.1", "n1"), readyEP("10.1.0.2", "n2"), readyEP("10.1.0.3", "n1")))
	s := e.until("web-c and the new web-a endpoint", func(s *kube.Snapshot) bool {
		_, hasC := s.Services[c]
		return hasC && hasReady(s, a, "10.1.0.1", "10.1.0.2", "10.1.0.3")
	})
	took := time.Since(start)
	if took > 3*time.Second {
		t.Errorf("the stream stalled for %s after a reload that abandoned a Source in back-off", took.Round(time.Millisecond))
	}
	e.wantReady(s, c, "10.3.0.1")
	t.Logf("reload to the takeover with the new endpoint: %s", took.Round(time.Millisecond))
}
