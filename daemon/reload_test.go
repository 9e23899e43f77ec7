package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ravel-lb/ravel/config"
)

const reloadGood = `apiVersion: ravel/v1
kind: ClusterConfig
node: {name: n1, role: director, vipInterface: ravel0}
vipPool: [10.0.0.100]
services:
  - {vip: 10.0.0.100, port: 80, backends: [{address: 10.0.1.5, weight: %W%}]}
`

func goodYAML(weight string) string { return strings.ReplaceAll(reloadGood, "%W%", weight) }

type reloadRig struct {
	t       *testing.T
	path    string
	r       *Reloader
	reg     *prometheus.Registry
	applied []*config.Config
	notes   []string
	mu      sync.Mutex // guards applied and notes
	fail    error      // returned by Apply when set
}

func newReloadRig(t *testing.T) *reloadRig {
	t.Helper()
	dir := t.TempDir()
	rig := &reloadRig{t: t, path: filepath.Join(dir, "ravel.yaml"), reg: prometheus.NewRegistry()}
	rig.write(goodYAML("1"))
	cfg, err := config.Load(rig.path)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(rig.reg)
	rig.r = &Reloader{
		Path:  rig.path,
		Parse: config.Parse,
		Apply: func(_ context.Context, _, c *config.Config) error {
			rig.mu.Lock()
			defer rig.mu.Unlock()
			if rig.fail != nil {
				return rig.fail
			}
			rig.applied = append(rig.applied, c)
			return nil
		},
		Reloading: func() { rig.note("RELOADING") },
		Reloaded:  func(rep ReloadReport) { rig.note("READY " + rep.Result) },
		Log:       slog.New(slog.DiscardHandler),
		Metrics:   m,
		Status:    NewStatus("test", cfg),
	}
	rig.r.Start(cfg)
	return rig
}

func (rig *reloadRig) note(s string) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	rig.notes = append(rig.notes, s)
}

func (rig *reloadRig) write(s string) {
	rig.t.Helper()
	if err := os.WriteFile(rig.path, []byte(s), 0o644); err != nil {
		rig.t.Fatal(err)
	}
}

func (rig *reloadRig) reload(trigger, want string) {
	rig.t.Helper()
	got, err := rig.r.Reload(context.Background(), trigger)
	if got != want {
		rig.t.Fatalf("Reload(%s) = %s (%v), want %s", trigger, got, err, want)
	}
	if (err != nil) != (want != ReloadOK && want != ReloadUnchanged) {
		rig.t.Fatalf("Reload(%s) = %s with error %v", trigger, got, err)
	}
}

func (rig *reloadRig) gauge(g prometheus.Collector) float64 { return testutil.ToFloat64(g) }

func TestReloaderResults(t *testing.T) {
	rig := newReloadRig(t)
	m := rig.r.Metrics
	if v := rig.gauge(m.ReloadOK); v != 1 {
		t.Fatalf("reload_successful = %v after Start, want 1", v)
	}
	startHash := rig.r.Running().Hash

	// The same bytes from the file watch: skipped, nothing counted, no RELOADING.
	rig.reload(TriggerFile, ReloadUnchanged)
	if n := testutil.CollectAndCount(m.Reloads); n != 0 {
		t.Errorf("an unchanged file was counted: %d series", n)
	}

	// A syntax error: refused, findings with a position, metric 0, the old config runs.
	rig.write(goodYAML("1") + "services: [\n")
	rig.reload(TriggerFile, ReloadInvalid)
	if v := rig.gauge(m.ReloadOK); v != 0 {
		t.Errorf("reload_successful = %v after an invalid file, want 0", v)
	}
	rep := rig.r.Status.Report()
	if rep.LastReload == nil || len(rep.LastReload.Findings) == 0 || rep.LastReload.Findings[0].Line == 0 {
		t.Fatalf("lastReload = %+v, want findings with a line", rep.LastReload)
	}
	if rig.r.Running().Hash != startHash || len(rig.applied) != 0 {
		t.Fatal("an invalid file was applied")
	}

	// A cross-field error (upper < lower threshold).
	rig.write(strings.Replace(goodYAML("1"), "backends:", "ipvs: {upperThreshold: 5, lowerThreshold: 10}, backends:", 1))
	rig.reload(TriggerFile, ReloadInvalid)
	if v := rig.gauge(m.ReloadOK); v != 0 {
		t.Errorf("reload_successful = %v, want 0", v)
	}

	// Back to the running bytes after a failure: reloaded (the metric must return to 1),
	// even though they equal the running config.
	rig.write(goodYAML("1"))
	rig.reload(TriggerFile, ReloadOK)
	if v := rig.gauge(m.ReloadOK); v != 1 {
		t.Errorf("reload_successful = %v after the good file returned, want 1", v)
	}

	// A new weight: applied, the hash series moves.
	rig.write(goodYAML("7"))
	rig.reload(TriggerFile, ReloadOK)
	if len(rig.applied) != 2 || rig.applied[1].Services[0].Backends[0].Weight == nil || *rig.applied[1].Services[0].Backends[0].Weight != 7 {
		t.Fatalf("applied = %d configs, want the weight-7 one last", len(rig.applied))
	}
	if n := testutil.CollectAndCount(m.ConfigInfo); n != 1 {
		t.Errorf("ravel_config_info has %d series, want 1 (the running config's)", n)
	}

	// SIGHUP reloads identical bytes.
	rig.reload(TriggerSignal, ReloadOK)

	// A restart-only change and a role that refuses: both leave the running config.
	running := rig.r.Running()
	rig.write(strings.Replace(goodYAML("7"), "vipInterface: ravel0", "vipInterface: ravel1", 1))
	rig.reload(TriggerFile, ReloadRestartRequired)
	rep = rig.r.Status.Report()
	if rep.LastReload.Findings[0].Path != "node" {
		t.Errorf("restart-required finding = %+v, want path node", rep.LastReload.Findings[0])
	}
	rig.write(goodYAML("8"))
	rig.fail = errors.New("kubeconfig unreadable")
	rig.reload(TriggerFile, ReloadFailed)
	if rig.r.Running() != running {
		t.Error("a config the role refused became the running one")
	}
	if v := rig.gauge(m.ReloadOK); v != 0 {
		t.Errorf("reload_successful = %v after a refused apply, want 0", v)
	}
	rig.fail = nil

	// A file caught empty between a truncate and its write is waited for, not refused (and
	// not counted); SIGHUP on it is refused.
	rig.write("")
	rig.reload(TriggerFile, ReloadUnchanged)
	if v := rig.gauge(m.ReloadOK); v != 0 {
		t.Errorf("reload_successful = %v, want still 0 (from the refused apply)", v)
	}

	// A missing file (deleted by mistake) is refused too, and a restored one reloads.
	if err := os.Remove(rig.path); err != nil {
		t.Fatal(err)
	}
	rig.reload(TriggerFile, ReloadInvalid)
	rig.write(goodYAML("8"))
	rig.reload(TriggerFile, ReloadOK)

	for _, c := range []struct {
		trigger, result string
		want            float64
	}{
		{TriggerFile, ReloadInvalid, 3}, {TriggerFile, ReloadOK, 3}, {TriggerSignal, ReloadOK, 1},
		{TriggerFile, ReloadUnchanged, 0},
		{TriggerFile, ReloadRestartRequired, 1}, {TriggerFile, ReloadFailed, 1},
	} {
		if v := testutil.ToFloat64(m.Reloads.WithLabelValues(c.trigger, c.result)); v != c.want {
			t.Errorf("reloads_total{%s,%s} = %v, want %v", c.trigger, c.result, v, c.want)
		}
	}
	// Every attempt that read a changed file (or a signal) is wrapped in RELOADING/READY, and
	// READY carries the outcome (systemd's status line says why a reload was refused).
	rig.mu.Lock()
	notes := strings.Join(rig.notes, " ")
	rig.mu.Unlock()
	var want string
	for _, r := range []string{ReloadInvalid, ReloadInvalid, ReloadOK, ReloadOK, ReloadOK, ReloadRestartRequired, ReloadFailed, ReloadOK} {
		want += " RELOADING READY " + r
	}
	if want = strings.TrimSpace(want); notes != want {
		t.Errorf("notifications = %q, want %q", notes, want)
	}
}

func TestRestartRequired(t *testing.T) {
	base, err := config.Parse("a.yaml", []byte(goodYAML("1")))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, from, to, path string
	}{
		{"role", "role: director", "role: realserver", "node"},
		{"name", "name: n1", "name: n2", "node"},
		{"chain", "vipPool:", "iptables: {chain: OTHER}\nvipPool:", "iptables.chain"},
		{"coordinator", "vipPool:", "coordinator: {ports: [44445]}\nvipPool:", "coordinator"},
		{"coordinator listen", "vipPool:", "coordinator: {listen: 10.0.0.9}\nvipPool:", "coordinator"},
		{"metrics", "vipPool:", "metrics: {listen: \"127.0.0.1:9\"}\nvipPool:", "metrics.listen"},
		{"health listen", "vipPool:", "health: {listen: \":10300\"}\nvipPool:", "health.listen"},
		{"kubernetes", "vipPool:", "kubernetes: {kubeconfig: /k}\nvipPool:", "kubernetes"},
		{"live: health interval", "vipPool:", "health: {interval: 5s}\nvipPool:", ""},
		{"live: weight", "weight: 1", "weight: 2", ""},
		{"live: colocation", "vipPool:", "colocation: colocated\nvipPool:", ""},
		{"live: resync", "vipPool:", "resync: 5s\nvipPool:", ""},
		{"rules backend", "vipPool:", "rules: {backend: nftables}\nvipPool:", "rules.backend"},
		{"rules table", "vipPool:", "rules: {table: ravel2}\nvipPool:", "rules.table"},
		{"live: rules inZone", "vipPool:", "rules: {inZone: false}\nvipPool:", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			next, err := config.Parse("a.yaml", []byte(strings.Replace(goodYAML("1"), c.from, c.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			got := RestartRequired(base, next)
			if c.path == "" {
				if len(got) != 0 {
					t.Fatalf("RestartRequired = %v, want none (applied live)", got)
				}
				return
			}
			if len(got) != 1 || got[0].Path != c.path {
				t.Fatalf("RestartRequired = %v, want one finding at %s", got, c.path)
			}
		})
	}
}

func TestFieldOf(t *testing.T) {
	for in, want := range map[string]string{
		"services[3].vip":                 "services.vip",
		"services[10].backends[2].weight": "services.backends.weight",
		"ipvsSysctls[\"conntrack\"]":      "ipvsSysctls",
		"defaults.ipvs.scheduler":         "defaults.ipvs.scheduler",
		"services[0].kubernetes.portName": "services.kubernetes.portName",
	} {
		if got := fieldOf(in); got != want {
			t.Errorf("fieldOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// watchRig runs WatchFile on a directory and counts the calls.
func watchRig(t *testing.T, path string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() {
		done <- WatchFile(ctx, path, 50*time.Millisecond, slog.New(slog.DiscardHandler), func() { calls <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchFile: %v", err)
		}
	})
	time.Sleep(50 * time.Millisecond) // let the watch be added before the test writes
	return calls
}

func expectCall(t *testing.T, calls <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatalf("no reload trigger after %s", what)
	}
	// Debounced: one burst of writes is one call.
	select {
	case <-calls:
		t.Fatalf("a second trigger after %s: the burst was not debounced", what)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestWatchFileEditStyles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ravel.yaml")
	if err := os.WriteFile(path, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := watchRig(t, path)

	// In place, in several writes (as `cat > file` or a slow editor).
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := f.WriteString("line\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.Close()
	expectCall(t, calls, "an in-place write")

	// Rename over (vim, sed -i, mv): the original inode is gone, the watch must still work.
	tmp := filepath.Join(dir, ".ravel.yaml.swp")
	for i := range 2 {
		if err := os.WriteFile(tmp, []byte{byte('b' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		expectCall(t, calls, "a rename over the file")
	}
}

// TestWatchFileConfigMapSwap reproduces how the kubelet updates a ConfigMap volume: the file is
// a symlink to ..data/ravel.yaml, ..data a symlink to a timestamped directory; an update
// writes a new directory and renames a new ..data symlink over the old one.
func TestWatchFileConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	mk := func(ts, content string) {
		d := filepath.Join(dir, ts)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "ravel.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("..2026_11_26_01_00_00.1", "one")
	if err := os.Symlink("..2026_11_26_01_00_00.1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ravel.yaml")
	if err := os.Symlink("..data/ravel.yaml", path); err != nil {
		t.Fatal(err)
	}
	calls := watchRig(t, path)
	for i, ts := range []string{"..2026_11_26_01_05_00.2", "..2026_11_26_01_10_00.3"} {
		mk(ts, "update")
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		expectCall(t, calls, "ConfigMap swap "+ts)
		if b, err := os.ReadFile(path); err != nil || string(b) != "update" {
			t.Fatalf("swap %d: file reads %q, %v", i, b, err)
		}
	}
}

func TestWatchFileSymlinkElsewhere(t *testing.T) {
	etc, srv := t.TempDir(), t.TempDir()
	target := filepath.Join(srv, "real.yaml")
	if err := os.WriteFile(target, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(etc, "ravel.yaml")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	calls := watchRig(t, path)
	if err := os.WriteFile(target, []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectCall(t, calls, "a write to the symlink's target in another directory")
}

func TestTriggersCoalesce(t *testing.T) {
	tr := NewTriggers()
	for range 10 {
		tr.Request(TriggerFile)
		tr.Request(TriggerSignal)
	}
	if n := len(tr.ch); n != 2 {
		t.Fatalf("%d queued, want 2 (one per trigger)", n)
	}
}

func TestStatusReadiness(t *testing.T) {
	cfg, err := config.Parse("a.yaml", []byte(goodYAML("1")))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	s := NewStatus("v", cfg)
	s.now = func() time.Time { return now }
	if ok, why := s.Ready(); ok || why == "" {
		t.Fatalf("Ready before any sync = %v %q, want false with a reason", ok, why)
	}
	s.RecordSync(SyncReport{Time: now, Kind: "full", Result: "error"})
	if ok, _ := s.Ready(); ok {
		t.Fatal("ready after a failed first sync")
	}
	select {
	case <-s.Synced():
		t.Fatal("Synced closed by a failed sync")
	default:
	}
	s.RecordSync(SyncReport{Time: now, Kind: "full", Result: "ok"})
	if ok, why := s.Ready(); !ok {
		t.Fatalf("not ready after a good sync: %s", why)
	}
	<-s.Synced()
	now = now.Add(StaleAfter(cfg) + time.Second) // 3 resyncs + 30 s later, nothing succeeded
	if ok, why := s.Ready(); ok || !strings.Contains(why, "old") {
		t.Fatalf("Ready with a stale last sync = %v %q, want false", ok, why)
	}
	// A realserver standing by for its director is healthy without syncing.
	s.SetCoordinator(true, false)
	if ok, why := s.Ready(); !ok {
		t.Fatalf("not ready while standing by: %s", why)
	}
}
