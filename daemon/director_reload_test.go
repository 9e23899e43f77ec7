package daemon

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/kube"
)

// variant parses a testdata config with replacements applied in order.
func variant(t *testing.T, name string, repl ...string) *config.Config {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(text, repl[i]) {
			t.Fatalf("%s has no %q", name, repl[i])
		}
		text = strings.Replace(text, repl[i], repl[i+1], 1)
	}
	cfg, err := config.Parse(path, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestDirectorReloadByDiff: a reloaded config is applied by diff — a new weight is one
// in-place edit and nothing else is touched — and Reload returns only once it is in the kernel.
func TestDirectorReloadByDiff(t *testing.T) {
	f := newFakes()
	d, _, _ := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
	runDirector(t, d, nil)
	waitFor(t, "the first sync", func() bool { return strings.Contains(f.ipvs.Dump(), "10.0.1.5:80 dr w=3") })
	f.resetCalls()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Reload(ctx, variant(t, "director-static.yaml", "{address: 10.0.1.5, weight: 3}", "{address: 10.0.1.5, weight: 5}")); err != nil {
		t.Fatal(err)
	}
	// Reload returned: the change must be there already, with no wait.
	if !strings.Contains(f.ipvs.Dump(), "10.0.1.5:80 dr w=5") {
		t.Fatalf("Reload returned before the new weight was applied:\n%s", f.ipvs.Dump())
	}
	if got := f.mutations(); len(got) != 1 || !strings.HasPrefix(got[0], "ipvs: UpdateDestination") {
		t.Errorf("mutations = %q, want exactly one UpdateDestination", got)
	}

	// A new service: only additions.
	f.resetCalls()
	next := variant(t, "director-static.yaml", "{address: 10.0.1.5, weight: 3}", "{address: 10.0.1.5, weight: 5}", "ipvsSysctls:", `  - {name: api, vip: 10.54.213.247, port: 443, backends: [{address: 10.0.1.9}]}
ipvsSysctls:`)
	if err := d.Reload(ctx, next); err != nil {
		t.Fatal(err)
	}
	for _, m := range f.mutations() {
		if !strings.HasPrefix(m, "ipvs: Add") {
			t.Errorf("adding a service also did %q", m)
		}
	}
	if !strings.Contains(f.ipvs.Dump(), "tcp 10.54.213.247:443") {
		t.Errorf("the new service is missing:\n%s", f.ipvs.Dump())
	}
}

// TestDirectorReloadApplyFailureRetried: when the kernel refuses part of a reloaded config,
// Reload still returns (the config is running) and the next cycle, a full resync, converges.
func TestDirectorReloadApplyFailureRetried(t *testing.T) {
	f := newFakes()
	d, _, m := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
	d.now = time.Now // Run's tickers are real: the retry backoff must see time pass
	runDirector(t, d, nil)
	waitFor(t, "the first sync", func() bool { return strings.Contains(f.ipvs.Dump(), "10.0.1.5:80 dr w=3") })

	f.ipvs.FailNext("UpdateDestination", errInjected)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Reload(ctx, variant(t, "director-static.yaml", "{address: 10.0.1.5, weight: 3}", "{address: 10.0.1.5, weight: 5}")); err != nil {
		t.Fatal(err)
	}
	if got := value(t, m.ApplyErrors); got != 1 {
		t.Errorf("ravel_apply_errors_total = %v, want 1", got)
	}
	// The drain ticker (1 s) runs the full resync a failed apply asked for.
	waitFor(t, "the retry", func() bool { return strings.Contains(f.ipvs.Dump(), "10.0.1.5:80 dr w=5") })
}

// TestDirectorReloadBeforeFirstSnapshot: a reload while the director still waits for its first
// Kubernetes snapshot programs nothing; the first sync then uses the reloaded config.
func TestDirectorReloadBeforeFirstSnapshot(t *testing.T) {
	f := newFakes()
	d, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
	snaps := make(chan *kube.Snapshot)
	runDirector(t, d, snaps)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := variant(t, "director-kube.yaml", "port: 80", "port: 8080")
	if err := d.Reload(ctx, next); err != nil {
		t.Fatal(err)
	}
	if got := f.mutations(); len(got) != 0 {
		t.Fatalf("a reload before the first snapshot programmed the kernel:\n%q", got)
	}
	snaps <- kubeSnapshot(withChanged(webRef), withNodesChanged)
	waitFor(t, "the first sync with the reloaded port", func() bool { return strings.Contains(f.ipvs.Dump(), "tcp 10.54.213.247:8080") })
	if strings.Contains(f.ipvs.Dump(), "tcp 10.54.213.247:80 ") {
		t.Errorf("the old port was programmed:\n%s", f.ipvs.Dump())
	}
}

// manyServicesYAML is (for parseYAML) a static director of n services on one VIP (ports 1000 up), each with two
// backends; web1000's first backend has weight w.
func manyServicesYAML(n, w int) string {
	var b strings.Builder
	b.WriteString("node: {name: director-1, role: director, interface: eth0, vipInterface: ravel0}\n")
	b.WriteString("vipPool: [10.54.213.247, 10.54.213.248]\nservices:\n")
	for i := range n {
		first := 1
		if i == 0 {
			first = w
		}
		fmt.Fprintf(&b, "  - {name: web%d, vip: 10.54.213.247, port: %d, backends: [{address: 10.0.1.5, weight: %d}, {address: 10.0.1.6}]}\n", 1000+i, 1000+i, first)
	}
	b.WriteString("ipvsSysctls: {conntrack: 1}\n")
	return b.String()
}

// TestDirectorReloadCostsWhatChanged: a reload is diffed against what the last sync committed,
// not against a full read of the kernel: one weight edited among 100 services reads one
// service's destinations (no services dump, no destinations of the other 99) and writes one
// op. A VIP leaving the pool with its service is unbound and the service deleted the same way.
// After a failed apply the next reload reads everything again.
func TestDirectorReloadCostsWhatChanged(t *testing.T) {
	f := newFakes()
	d, _, m := newTestDirector(t, parseYAML(t, manyServicesYAML(100, 3)), f, nil)
	runDirector(t, d, nil)
	// LastSync is set once the first sync's whole plan is applied (its services come first).
	waitFor(t, "the first sync", func() bool { return value(t, m.LastSync) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	f.resetCalls()
	if err := d.Reload(ctx, parseYAML(t, manyServicesYAML(100, 5))); err != nil {
		t.Fatal(err)
	}
	if got := f.mutations(); len(got) != 1 || !strings.HasPrefix(got[0], "ipvs: UpdateDestination") {
		t.Errorf("mutations = %q, want exactly one UpdateDestination", got)
	}
	reads := map[string]int{}
	for _, op := range []string{"Services", "Destinations", "ListedDestinations", "DestStats"} {
		reads[op] = f.ipvs.Calls(op)
	}
	if want := map[string]int{"Services": 0, "Destinations": 1, "ListedDestinations": 0, "DestStats": 0}; !maps.Equal(reads, want) {
		t.Errorf("IPVS reads of a one-weight reload = %v, want %v", reads, want)
	}
	if !strings.Contains(f.ipvs.Dump(), "-> 10.0.1.5:1000 dr w=5") {
		t.Errorf("the new weight is not in the kernel:\n%s", f.ipvs.Dump())
	}

	// A second VIP with a service, then the VIP and its service gone again: bound and added,
	// then deleted and unbound, with no full read.
	withB := strings.Replace(manyServicesYAML(100, 5), "ipvsSysctls:", "  - {name: b, vip: 10.54.213.248, port: 80, backends: [{address: 10.0.1.7}]}\nipvsSysctls:", 1)
	if err := d.Reload(ctx, parseYAML(t, withB)); err != nil {
		t.Fatal(err)
	}
	f.resetCalls()
	gone := strings.Replace(manyServicesYAML(100, 5), "vipPool: [10.54.213.247, 10.54.213.248]", "vipPool: [10.54.213.247]", 1)
	if err := d.Reload(ctx, parseYAML(t, gone)); err != nil {
		t.Fatal(err)
	}
	if got, want := f.mutations(), []string{"ipvs: DelService tcp 10.54.213.248:80", "links: DelAddr ravel0 10.54.213.248/32"}; !slices.Equal(got, want) {
		t.Errorf("mutations removing a VIP = %q, want %q", got, want)
	}
	if n := f.ipvs.Calls("Services"); n != 0 {
		t.Errorf("removing a VIP listed every service (%d dumps)", n)
	}

	// A failed apply: the next reload stands on nothing it committed, so it reads everything.
	f.ipvs.FailNext("UpdateDestination", errInjected)
	if err := d.Reload(ctx, parseYAML(t, manyServicesYAML(100, 7))); err != nil {
		t.Fatal(err)
	}
	f.resetCalls()
	if err := d.Reload(ctx, parseYAML(t, manyServicesYAML(100, 8))); err != nil {
		t.Fatal(err)
	}
	if n := f.ipvs.Calls("Services"); n != 1 {
		t.Errorf("the reload after a failed apply listed services %d times, want 1 (a full read)", n)
	}
	if !strings.Contains(f.ipvs.Dump(), "-> 10.0.1.5:1000 dr w=8") {
		t.Errorf("the reload after a failed apply did not converge:\n%s", f.ipvs.Dump())
	}
	if got := value(t, m.Syncs.WithLabelValues("reload", "ok")); got < 2 {
		t.Errorf(`ravel_syncs_total{kind="reload",result="ok"} = %v, want >= 2`, got)
	}
}
