package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/reconcile"
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
	t.Run("RetargetDeniedKeepsDestinations", func(t *testing.T) { testFeedRetargetDenied(t, base) })
}

// 8. A reload that points web-a's VIP at another Kubernetes service whose watch RBAC denies
// (it never syncs): a director following the feed keeps the service's destinations, not
// emptied, for as long as that lasts; a later reload that can sync brings the new target's
// (issue 11, item 4).
func testFeedRetargetDenied(t *testing.T, base *rest.Config) {
	e := newFeedEnv(t, base)
	e.service("web-a", "10.1.0.1", "10.1.0.2") // on n1 and n2
	e.service("web-b", "10.2.0.1")             // on n1
	e.service("web-c", "10.3.0.1")
	e.start(feedConfig{services: []string{"web-a"}})
	f := newFakes()
	cfg := e.config(feedConfig{services: []string{"web-a"}})
	d := NewDirector(cfg, reconcile.Node{Name: "director-1", Role: "director"}, f.kernel(), nil, e.log, NewMetrics(prometheus.NewRegistry()))
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx, e.feed.Snapshots()) }()
	t.Cleanup(func() { cancel(); <-done })
	weights := func() string {
		k := netops.ServiceKey{VIP: netip.MustParseAddr(feedVIPs["web-a"]), Port: 80, Proto: netops.TCP}
		ds, err := f.ipvs.Destinations(k)
		if err != nil {
			return "missing"
		}
		var out []string
		for _, x := range ds {
			out = append(out, fmt.Sprintf("%s=%d", x.Addr, x.Weight))
		}
		return strings.Join(out, " ")
	}
	const both = "192.0.2.1=1 192.0.2.2=1"
	waitFor(t, "web-a's destinations", func() bool { return weights() == both })

	reload := func(c feedConfig) {
		next := e.config(c)
		commit, err := e.feed.Prepare(next)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		if err := d.Reload(e.ctx, next); err != nil {
			t.Fatal(err)
		}
		commit(e.ctx)
	}
	denied := rest.CopyConfig(e.rc)
	denied.Impersonate = rest.ImpersonationConfig{UserName: "ravel-e2e-nobody"} // no RBAC binding
	e.setTarget(denied)
	reload(feedConfig{services: []string{"web-a"}, targets: map[string]string{"web-a": "web-b"}})
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got := weights(); got != both {
			t.Fatalf("while web-b's watch is denied, web-a's VIP has %q, want %q kept", got, both)
		}
	}
	if p := e.feed.PendingFor(); p < time.Second {
		t.Errorf("PendingFor = %s, want the denied watches still pending", p)
	}

	e.setTarget(nil)
	reload(feedConfig{services: []string{"web-a", "web-c"}, targets: map[string]string{"web-a": "web-b"}})
	waitFor(t, "web-b's endpoints on web-a's VIP", func() bool { return weights() == "192.0.2.1=1 192.0.2.2=0" })
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
