package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/health"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/reconcile"
)

func parseYAML(t *testing.T, y string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte("apiVersion: ravel/v1\nkind: ClusterConfig\n"+y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// weightsOf lists the destinations of key in the fake kernel as "addr:port=w", sorted.
func weightsOf(t *testing.T, f *fakes, key string) string {
	t.Helper()
	k := netops.ServiceKey{}
	proto, addr, _ := strings.Cut(key, " ")
	ap := netip.MustParseAddrPort(addr)
	k.VIP, k.Port = ap.Addr(), ap.Port()
	k.Proto, _ = netops.ParseProto(proto)
	ds, err := f.ipvs.Destinations(k)
	if err != nil {
		return "missing"
	}
	var out []string
	for _, d := range ds {
		out = append(out, netip.AddrPortFrom(d.Addr, d.Port).String()+"="+strconv.Itoa(d.Weight))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// newCheckedDirector is a director over fakes with its checks (not running: tests feed
// results to OnCheck), a fake clock for both, its logs, and a first full sync done.
func newCheckedDirector(t *testing.T, cfg *config.Config) (*Director, *fakes, *Metrics, *Checks, *fakeClock, *syncBuffer) {
	t.Helper()
	f := newFakes()
	m := NewMetrics(prometheus.NewRegistry())
	logs := &syncBuffer{}
	d := NewDirector(cfg, nodeOf(cfg), f.kernel(), nil, slog.New(slog.NewTextHandler(logs, nil)), m)
	clock := newClock()
	d.now = clock.now
	checks := NewChecks(m, 4)
	checks.now = clock.now
	d.SetChecks(checks)
	d.FullSync()
	return d, f, m, checks, clock, logs
}

const staticChecked = `node: {name: director-1}
vipPool: [10.0.0.1]
defaults:
  healthCheck: {type: http, path: /ok, interval: 2s, timeout: 1s, rise: 2, fall: 2}
services:
  - name: web
    vip: 10.0.0.1
    port: 80
    backends: [{address: 10.0.1.1, weight: 3}, {address: 10.0.1.2}]
    sorryServer: {address: 10.0.2.9}
`

// TestDirectorStaticChecks drives the director's checks with results (the probes themselves
// are tested in package health against real servers): a failing backend drains at weight 0 by
// one in-place edit, never a full sync; all failing brings the sorry server; one back removes
// it; each transition is logged once.
func TestDirectorStaticChecks(t *testing.T) {
	cfg := parseYAML(t, staticChecked)
	d, f, m, checks, clock, logs := newCheckedDirector(t, cfg)
	if got := weightsOf(t, f, "tcp 10.0.0.1:80"); got != "10.0.1.1:80=3 10.0.1.2:80=1" {
		t.Fatalf("after the first sync: %s", got)
	}
	fullBefore := value(t, m.Syncs.WithLabelValues("full", "ok"))
	b1 := backendJob(backendID{svcID{netip.MustParseAddr("10.0.0.1"), 80}, netops.DestKey{Addr: netip.MustParseAddr("10.0.1.1"), Port: 80}})
	b2 := backendJob(backendID{svcID{netip.MustParseAddr("10.0.0.1"), 80}, netops.DestKey{Addr: netip.MustParseAddr("10.0.1.2"), Port: 80}})
	fail := health.Result{Reason: "status 503, want 200", Status: 503}
	pass := health.Result{OK: true, Status: 200}
	feed := func(id string, r health.Result, n int) {
		for range n {
			clock.advance(2 * time.Second)
			d.OnCheck(checkResult{id, r})
		}
	}

	feed(b1, fail, 1)
	if got := weightsOf(t, f, "tcp 10.0.0.1:80"); got != "10.0.1.1:80=3 10.0.1.2:80=1" {
		t.Errorf("one failure (fall 2) changed weights: %s", got)
	}
	f.resetCalls()
	feed(b1, fail, 1)
	if got := weightsOf(t, f, "tcp 10.0.0.1:80"); got != "10.0.1.1:80=0 10.0.1.2:80=1" {
		t.Errorf("after fall failures: %s, want 10.0.1.1 at weight 0", got)
	}
	if muts := f.mutations(); len(muts) != 1 || !strings.Contains(muts[0], "UpdateDestination") {
		t.Errorf("the transition applied %v, want one in-place weight edit", muts)
	}
	if got := value(t, m.BackendUp.WithLabelValues("web", "10.0.1.1:80")); got != 0 {
		t.Errorf("ravel_backend_up of the failed backend = %v, want 0", got)
	}

	feed(b2, fail, 2)
	if got := weightsOf(t, f, "tcp 10.0.0.1:80"); got != "10.0.1.1:80=0 10.0.1.2:80=0 10.0.2.9:80=1" {
		t.Errorf("every backend failing: %s, want the sorry server alone at weight 1", got)
	}
	feed(b2, pass, 2)
	if got := weightsOf(t, f, "tcp 10.0.0.1:80"); got != "10.0.1.1:80=0 10.0.1.2:80=1 10.0.2.9:80=0" {
		t.Errorf("a backend back: %s, want it at 1 and the sorry server draining at 0", got)
	}
	if got := value(t, m.Syncs.WithLabelValues("full", "ok")); got != fullBefore {
		t.Errorf("health transitions ran %v full syncs, want none", got-fullBefore)
	}
	if n := strings.Count(logs.String(), "health check failing"); n != 2 {
		t.Errorf("%d 'health check failing' lines for 2 transitions (4 failed checks):\n%s", n, logs.String())
	}
	un := checks.Unhealthy()
	if len(un) != 1 || un[0].Backend != "10.0.1.1:80" || un[0].Reason != "status 503, want 200" || un[0].Since.IsZero() {
		t.Errorf("Unhealthy() = %+v, want 10.0.1.1:80 with its reason and since", un)
	}

	// A reload that drops the failed backend removes its series and its state; the other
	// backend's check keeps its state (no rise needed again).
	d.setConfig(parseYAML(t, strings.Replace(staticChecked, "{address: 10.0.1.1, weight: 3}, ", "", 1)))
	if n := testutil.CollectAndCount(m.BackendUp); n != 1 {
		t.Errorf("%d ravel_backend_up series after the backend left, want 1", n)
	}
	// 10.0.1.2 went down and up (two series) and stays; 10.0.1.1's "down" goes with it.
	if n := testutil.CollectAndCount(m.HealthTransitions); n != 2 {
		t.Errorf("%d ravel_health_transitions_total series after the backend left, want 2 (the remaining backend's up and down)", n)
	}
	if len(checks.Unhealthy()) != 0 || len(checks.backends) != 1 {
		t.Errorf("after the reload: unhealthy %+v, %d checked backends, want none and 1", checks.Unhealthy(), len(checks.backends))
	}
}

// TestDirectorStaticHold: without a sorry server, every backend failing keeps their weights
// (the checks are more likely wrong than every backend), and says so once.
func TestDirectorStaticHold(t *testing.T) {
	cfg := parseYAML(t, strings.Replace(staticChecked, "    sorryServer: {address: 10.0.2.9}\n", "", 1))
	d, f, m, _, clock, logs := newCheckedDirector(t, cfg)
	for _, b := range []string{"10.0.1.1", "10.0.1.2"} {
		id := backendJob(backendID{svcID{netip.MustParseAddr("10.0.0.1"), 80}, netops.DestKey{Addr: netip.MustParseAddr(b), Port: 80}})
		for range 2 {
			clock.advance(time.Second)
			d.OnCheck(checkResult{id, health.Result{Reason: "connect: no route to host"}})
		}
	}
	if got := weightsOf(t, f, "tcp 10.0.0.1:80"); got != "10.0.1.1:80=3 10.0.1.2:80=1" {
		t.Errorf("every backend failing without a sorry server: %s, want the weights held", got)
	}
	if got := value(t, m.HealthHold); got != 1 {
		t.Errorf("ravel_health_hold_services = %v, want 1", got)
	}
	d.FullSync()
	d.FullSync()
	if n := strings.Count(logs.String(), "keeping the last healthy ones"); n != 1 {
		t.Errorf("the hold was logged %d times over 3 syncs, want once:\n%s", n, logs.String())
	}
}

// nodeServer serves a NodeHealth on addr:port with the real handler.
func nodeServer(t *testing.T, addr string, port int, nh *NodeHealth) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		t.Skipf("cannot listen on %s (loopback addresses beyond 127.0.0.1 unavailable?): %v", addr, err)
	}
	srv := &http.Server{Handler: health.NewHandler(nh.View)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestDirectorChecksRealservers runs the director with real probes against two realserver
// health endpoints on loopback (127.0.0.1 and 127.0.0.2 stand in for two nodes): a node that
// drains gets weight 0, one that comes back gets its pod count again, one that lacks a
// service's rules is taken out of that service only, and both going silent holds the weights.
func TestDirectorChecksRealservers(t *testing.T) {
	port := freePort(t)
	cfg := parseYAML(t, `node: {name: director-1}
kubernetes: {}
vipPool: [10.0.0.1]
health: {listen: ":`+strconv.Itoa(port)+`", interval: 200ms, timeout: 150ms, rise: 2, fall: 2}
services:
  - {name: web, vip: 10.0.0.1, port: 80, kubernetes: {namespace: web, service: nginx, portName: http}}
  - {name: api, vip: 10.0.0.1, port: 81, kubernetes: {namespace: web, service: api, portName: http}}
`)
	apiRef := kube.ServiceRef{Namespace: "web", Service: "api", PortName: "http", Family: family.IPv4}
	snap := makeSnapshot(withNode("n1", "127.0.0.1"), withNode("n2", "127.0.0.2"),
		withEndpoints(webRef, ready("10.244.1.5", 8080, "n1"), ready("10.244.1.6", 8080, "n1"), ready("10.244.2.5", 8080, "n2")),
		withEndpoints(apiRef, ready("10.244.1.7", 8080, "n1"), ready("10.244.2.7", 8080, "n2")))
	views := map[string]*NodeHealth{}
	for name, addr := range map[string]string{"n1": "127.0.0.1", "n2": "127.0.0.2"} {
		nh := NewNodeHealth(name)
		nodeServer(t, addr, port, nh)
		views[name] = nh
	}
	program := func(node string, services ...string) {
		rn := reconcile.Node{Name: node, Role: "realserver"}
		var local []netops.LocalService
		for _, s := range reconcile.LocalServices(cfg, snap, rn) {
			for _, want := range services {
				if s.Name == want {
					local = append(local, s)
				}
			}
		}
		views[node].Programmed(cfg, local, true)
	}
	program("n1", "web", "api")
	program("n2", "web", "api")

	f := newFakes()
	m := NewMetrics(prometheus.NewRegistry())
	d := NewDirector(cfg, nodeOf(cfg), f.kernel(), nil, discard, m)
	checks := NewChecks(m, 8)
	d.SetChecks(checks)
	ctx, cancel := context.WithCancel(context.Background())
	snaps := make(chan *kube.Snapshot, 1)
	snaps <- snap
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); checks.Run(ctx) }()
	go func() { defer wg.Done(); _ = d.Run(ctx, snaps) }()
	defer func() { cancel(); wg.Wait() }()

	web := func() string { return weightsOf(t, f, "tcp 10.0.0.1:80") }
	api := func() string { return weightsOf(t, f, "tcp 10.0.0.1:81") }
	waitFor(t, "pod-count weights", func() bool { return web() == "127.0.0.1:80=2 127.0.0.2:80=1" })

	views["n1"].SetDraining(true)
	waitFor(t, "draining n1 at weight 0", func() bool {
		return web() == "127.0.0.1:80=0 127.0.0.2:80=1" && api() == "127.0.0.1:81=0 127.0.0.2:81=1"
	})
	views["n1"].SetDraining(false)
	waitFor(t, "n1 back at its pod count", func() bool { return web() == "127.0.0.1:80=2 127.0.0.2:80=1" })

	program("n2", "web") // n2 lost its api rules: out of api only
	waitFor(t, "n2 out of api only", func() bool {
		return api() == "127.0.0.1:81=1 127.0.0.2:81=0" && web() == "127.0.0.1:80=2 127.0.0.2:80=1"
	})
	program("n2", "web", "api")
	waitFor(t, "n2 back in api", func() bool { return api() == "127.0.0.1:81=1 127.0.0.2:81=1" })

	// Both nodes go silent (the director's health network is cut): the weights hold.
	for _, nh := range views {
		nh.SetDraining(true)
	}
	waitFor(t, "the hold", func() bool { return value(t, m.HealthHold) == 2 })
	if got := web(); got != "127.0.0.1:80=2 127.0.0.2:80=1" {
		t.Errorf("every node failing: web %s, want the weights held", got)
	}
}

// TestNodeHealthProgrammed: the view lists every Kubernetes service of the config, with the
// local endpoints the rules were rendered with, and claims rules only when the apply worked.
func TestNodeHealthProgrammed(t *testing.T) {
	cfg := loadConfig(t, "director-kube.yaml")
	snap := kubeSnapshot()
	nh := NewNodeHealth("n1")
	if v := nh.View(); v.Synced || len(v.Services) != 0 {
		t.Fatalf("a new view: %+v, want not synced and empty", v)
	}
	local := reconcile.LocalServices(cfg, snap, reconcile.Node{Name: "n1", Role: "realserver"})
	nh.Programmed(cfg, local, true)
	v := nh.View()
	if !v.Synced || len(v.Services) != 1 || v.Services[0].LocalEndpoints != 2 || !v.Services[0].RulesProgrammed {
		t.Errorf("after a sync: %+v, want web with 2 local endpoints and its rules", v)
	}
	if !v.Serving(netip.MustParseAddr("10.54.213.247"), 80, "tcp") {
		t.Error("the view does not serve web")
	}
	nh.Programmed(cfg, local, false)
	if v := nh.View(); v.Services[0].RulesProgrammed {
		t.Error("a failed apply still claims the rules")
	}
	nh.Programmed(cfg, nil, true)
	if v := nh.View(); len(v.Services) != 1 || v.Services[0].LocalEndpoints != 0 || v.Services[0].RulesProgrammed {
		t.Errorf("no local endpoints: %+v, want web listed with 0 and no rules", v.Services)
	}
	nh.Programmed(cfg, local, true)
	nh.Stopped()
	if v := nh.View(); v.Services[0].RulesProgrammed {
		t.Error("after Stopped the view still claims the rules")
	}
}

// TestWatcherDrain: before the role stops, the view answers draining for the drain delay.
func TestWatcherDrain(t *testing.T) {
	nh := NewNodeHealth("n1")
	m := NewMetrics(prometheus.NewRegistry())
	w := &Watcher{Health: nh, DrainDelay: 300 * time.Millisecond, Log: discard, Metrics: m}
	done := make(chan struct{})
	start := time.Now()
	go func() { w.drain(context.Background()); close(done) }()
	waitFor(t, "draining", nh.Draining)
	if value(t, m.RealserverDraining) != 1 {
		t.Error("ravel_realserver_draining is not 1 while draining")
	}
	<-done
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("drain returned after %v, before its delay", time.Since(start))
	}
	if nh.Draining() || value(t, m.RealserverDraining) != 0 {
		t.Error("still draining after the delay")
	}
}
