package daemon

import (
	"context"
	"os"
	"path/filepath"
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
