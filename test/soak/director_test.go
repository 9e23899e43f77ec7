package soak

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/reconcile"
)

// director is a director wired as `ravel run` wires it (cmd/ravel: runDirector, kubeFeed): a
// daemon.KubeFeed whose Source reads the kubeconfig of the config, a daemon.Director with
// metrics, status and iptables tables, run by Director.Run on the feed's snapshots. Only the
// kernel is faked (netops fakes, iptables.Fake), and there is no GARP, coordinator, HTTP
// server or reload loop.
type director struct {
	cfg    *config.Config
	reg    *prometheus.Registry
	status *daemon.Status
	ipvs   *netops.FakeIPVS
	links  *netops.FakeLinks
	sysctl *netops.FakeSysctl
	tables *iptables.Fake
	logs   *logTally
}

// soakConfig is a director config with one service per Kubernetes service, each on its own
// VIP, loaded with the daemon's loader. Debounce 0 gives every change its own snapshot and
// partial sync (the most work per change); resync 10s gives a full sync every 10 s.
func soakConfig(t *testing.T, kubeconfig, ns string) *config.Config {
	t.Helper()
	var pool, svcs strings.Builder
	for i := range soakServices {
		fmt.Fprintf(&pool, "  - %s\n", vip(i))
		fmt.Fprintf(&svcs, "  - {name: svc-%d, vip: %s, port: %d, kubernetes: {namespace: %s, service: svc-%d, portName: http}}\n",
			i, vip(i), servicePort, ns, i)
	}
	yaml := fmt.Sprintf(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director-1, role: director, interface: eth0, vipInterface: ravel0}
resync: 10s
kubernetes:
  kubeconfig: %s
  nodeSelector: {ravel-lb: %s}
  debounce: {quiet: 0s, maxDelay: 0s}
vipPool:
%sservices:
%s`, kubeconfig, ns, pool.String(), svcs.String())
	cfg, err := config.Parse("soak-director.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// kubeOptions is cmd/ravel's kubeOptions: the Source options of cfg.
func kubeOptions(cfg *config.Config) kube.Options { return kube.OptionsFrom(&cfg.ClusterConfig) }

// startDirector runs the director until the test ends and waits for its first sync.
func startDirector(t *testing.T, cfg *config.Config) *director {
	t.Helper()
	d := &director{cfg: cfg, reg: prometheus.NewRegistry(), status: daemon.NewStatus("soak", cfg),
		ipvs: netops.NewFakeIPVS(), links: netops.NewFakeLinks(), sysctl: netops.NewFakeSysctl(),
		tables: iptables.NewFake(cfg.IPTables.Chain), logs: &logTally{}}
	// As in production: text logs at info (every plan is logged), written and then dropped.
	log := slog.New(slog.NewTextHandler(d.logs, nil))
	m := daemon.NewMetrics(d.reg)
	feed := daemon.NewKubeFeed(kubeOptions, func(c *config.Config, standby bool) (*kube.Source, error) {
		opts := kubeOptions(c)
		opts.Logger, opts.Registerer, opts.Standby = log, d.reg, standby
		return kube.NewSource(opts)
	}, log)
	ctx, cancel := context.WithCancel(context.Background())
	if err := feed.Start(ctx, cfg); err != nil {
		cancel()
		t.Fatal(err)
	}
	k := reconcile.Kernel{IPVS: d.ipvs, Links: d.links, Sysctl: d.sysctl}
	dir := daemon.NewDirector(cfg, reconcile.Node{Name: cfg.Node.Name, Role: cfg.Node.Role}, k, nil, log, m)
	dir.SetStatus(d.status)
	dir.SetColocated(d.tables) // isolated directors get the tables too (they remove stale chains)
	done := make(chan error, 1)
	go func() { done <- dir.Run(ctx, feed.Snapshots()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Director.Run: %v", err)
		}
		feed.Wait()
	})
	select {
	case <-d.status.Synced():
	case err := <-done:
		t.Fatalf("Director.Run returned before its first sync: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("no first sync after 2 minutes")
	}
	return d
}

// resetCalls forgets the fakes' call logs, which grow with every mutation (a test fake's
// bookkeeping, not ravel's memory), and returns how many IPVS mutations they held.
func (d *director) resetCalls() int {
	n := len(d.ipvs.Log())
	d.ipvs.ResetCalls()
	d.links.ResetCalls()
	d.sysctl.ResetCalls()
	return n
}

// logTally is the director's log output: it counts records and keeps the last warnings and
// errors, to show when a sample or the end fails.
type logTally struct {
	mu      sync.Mutex // guards the fields below
	records int
	warns   int
	last    []string // the last warnings and errors, at most 20
}

func (l *logTally) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records++
	if bytes.Contains(p, []byte(" level=WARN ")) || bytes.Contains(p, []byte(" level=ERROR ")) {
		l.warns++
		l.last = append(l.last, strings.TrimSpace(string(p)))
		if len(l.last) > 20 {
			l.last = l.last[1:]
		}
	}
	return len(p), nil
}

// counts returns the records and the warnings or errors written so far.
func (l *logTally) counts() (records, warns int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records, l.warns
}

func (l *logTally) lastWarnings() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n")
}
