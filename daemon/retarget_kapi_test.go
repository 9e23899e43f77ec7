package daemon

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/reconcile"
)

// TestRealserverRetargetDeniedKeepsRules (issue 11, item 4), the realserver half of
// TestKubeFeed/RetargetDeniedKeepsDestinations, on a real kube-apiserver: a realserver on n1
// follows the KubeFeed, as cmd/ravel's runRealserver does, and a reload points web-a's VIP at
// web-b while the new watch is denied by RBAC (it never syncs). Its DNAT chain for web-a keeps
// web-a's pod on n1 for as long as that lasts; a later reload whose watches sync brings web-b's
// pod on n1, and web-a's goes.
//
//	KAPI_BIN=$(hack/kapi/build.sh | tail -n1) RAVEL_REQUIRE_KAPI=1 go test -race -count=1 ./daemon -run TestRealserverRetargetDeniedKeepsRules -v
func TestRealserverRetargetDeniedKeepsRules(t *testing.T) {
	base := startKapiHelper(t)
	e := newFeedEnv(t, base)
	e.service("web-a", "10.1.0.1", "10.1.0.2") // on n1 and n2
	e.service("web-b", "10.2.0.1")             // on n1
	e.service("web-c", "10.3.0.1")             // on n1
	e.start(feedConfig{services: []string{"web-a"}})

	// The role, fed as runRealserver feeds it: the stream bridged into a Latest.
	f := newRealserverFakes(t, "eth0")
	latest := NewLatest()
	r := NewRealserver(rsFeedConfig(e, nil), reconcile.Node{Name: e.node("n1"), Role: "realserver"}, f.kernelLinks(), f.sysctl, f.tables, latest, e.log, NewMetrics(prometheus.NewRegistry()))
	ctx, cancel := context.WithCancel(e.ctx)
	bridged, ran := make(chan struct{}), make(chan error, 1)
	go func() {
		defer close(bridged)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-e.feed.Snapshots():
				latest.Set(s)
			}
		}
	}()
	go func() { ran <- r.Run(ctx) }()
	t.Cleanup(func() { // before the feed's cleanup and goleak's check (registered earlier)
		cancel()
		<-bridged
		if err := <-ran; err != nil {
			t.Errorf("Realserver.Run = %v", err)
		}
	})

	// dnat lists the destinations web-a's VIP is DNATed to on n1, sorted.
	jump := regexp.MustCompile(`^-A RAVEL -d ` + regexp.QuoteMeta(feedVIPs["web-a"]) + `/32 .* -j (\S+)$`)
	dnat := func() string {
		dump := f.ownedChains(t)
		var chain string
		for l := range strings.Lines(dump) {
			if m := jump.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				chain = m[1]
			}
		}
		if chain == "" {
			return "none"
		}
		var out []string
		for l := range strings.Lines(dump) {
			if tail, ok := strings.CutPrefix(strings.TrimSpace(l), "-A "+chain+" "); ok {
				if _, to, ok := strings.Cut(tail, "--to-destination "); ok {
					out = append(out, to)
				}
			}
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	const webA, webB = "10.1.0.1:8080", "10.2.0.1:8080"
	waitFor(t, "web-a's DNAT to its pod on n1", func() bool { return dnat() == webA })

	reload := func(targets map[string]string, services ...string) {
		t.Helper()
		next := rsFeedConfig(e, targets, services...)
		commit, err := e.feed.Prepare(next) // cmd/ravel's applyWith: Prepare, the role, commit
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		r.Reload(next)
		commit(e.ctx)
	}
	denied := rest.CopyConfig(e.rc)
	denied.Impersonate = rest.ImpersonationConfig{UserName: "ravel-e2e-nobody"} // no RBAC binding
	e.setTarget(denied)
	retarget := map[string]string{"web-a": "web-b"}
	reload(retarget, "web-a")
	// The old watches go on publishing (a new ready pod of web-a, on n1 too): the role syncs on
	// it, on the reload and at every 1 s resync, with web-a pointed at the unknown web-b.
	e.putSlice(e.slice("web-a", readyEP("10.1.0.1", "n1"), readyEP("10.1.0.2", "n2"), readyEP("10.1.0.3", "n1")))
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got := dnat(); got != webA {
			t.Fatalf("while web-b's watch is denied, web-a's VIP DNATs to %q on n1, want %q kept:\n%s", got, webA, f.ownedChains(t))
		}
	}
	if p := e.feed.PendingFor(); p < time.Second {
		t.Errorf("PendingFor = %s, want the denied watches still pending", p)
	}

	e.setTarget(nil)
	reload(retarget, "web-a", "web-c") // other watches than the denied reload's: a new Source
	waitFor(t, "web-b's pod on n1 behind web-a's VIP", func() bool { return dnat() == webB })
	if got := f.ownedChains(t); strings.Contains(got, webA) || !strings.Contains(got, "10.3.0.1:8080") {
		t.Errorf("after the reload that syncs, want web-a's pod gone and web-c's there:\n%s", got)
	}
}

// rsFeedConfig is e.config's config for a realserver on n1 (services default to web-a), with
// a 1 s resync.
func rsFeedConfig(e *feedEnv, targets map[string]string, services ...string) *config.Config {
	e.t.Helper()
	if len(services) == 0 {
		services = []string{"web-a"}
	}
	var svcs strings.Builder
	for _, s := range services {
		target := s
		if t, ok := targets[s]; ok {
			target = t
		}
		fmt.Fprintf(&svcs, "  - {name: %s, vip: %s, port: 80, kubernetes: {namespace: %s, service: %s, portName: http}}\n",
			s, feedVIPs[s], e.ns, target)
	}
	yaml := fmt.Sprintf(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: %s, role: realserver, interface: eth0, vipInterface: ravel0}
resync: 1s
kubernetes:
  nodeSelector: {ravel-lb: %s}
  debounce: {quiet: 0s, maxDelay: 0s}
vipPool: [10.200.0.1, 10.200.0.2, 10.200.0.3, 10.200.0.9]
services:
%s`, e.node("n1"), e.ns, svcs.String())
	cfg, err := config.Parse("realserver-kubefeed.yaml", []byte(yaml))
	if err != nil {
		e.t.Fatalf("config:\n%s\n%v", yaml, err)
	}
	return cfg
}
