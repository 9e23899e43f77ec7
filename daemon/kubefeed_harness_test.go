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
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/kubeobj"
	"github.com/ravel-lb/ravel/kube"
)

// The environment of TestKubeFeed (kubefeed_test.go): a namespace, two nodes and services
// with their EndpointSlices on the API server of TestKapiHelperProcess, a director config
// that follows them, and the KubeFeed under test with readers of its snapshot stream and its
// metrics. Every goroutine and connection it starts ends with the test.

// feedConfig describes a director config of the test's namespace.
type feedConfig struct {
	services        []string // Kubernetes services followed (port "http"), in this order
	debounce        string   // kubernetes.debounce; empty means {quiet: 0s, maxDelay: 0s}
	scheduler       string   // ipvs.scheduler of every service; empty keeps the default
	static          bool     // adds a static service
	includeCordoned bool
	targets         map[string]string // service name → the Kubernetes service it follows (default: its name)
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
	return kube.ServiceRef{Namespace: e.ns, Service: svc, PortName: "http", Family: family.IPv4}
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
		target := s
		if t, ok := c.targets[s]; ok {
			target = t
		}
		fmt.Fprintf(&svcs, "  - {name: %s, vip: %s, port: 80, kubernetes: {namespace: %s, service: %s, portName: http}%s}\n",
			s, feedVIPs[s], e.ns, target, ipvs)
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
func feedOptions(cfg *config.Config) kube.Options { return kube.OptionsFrom(&cfg.ClusterConfig) }

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
