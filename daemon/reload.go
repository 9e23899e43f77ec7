package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/ravel-lb/ravel/config"
)

// Reload triggers.
const (
	TriggerFile   = "file"   // the watched file changed (skipped when its bytes did not)
	TriggerSignal = "signal" // SIGHUP: always reloads
)

// Reload results, as in ReloadReport.Result and ravel_config_reloads_total.
const (
	ReloadOK              = "ok"
	ReloadUnchanged       = "unchanged"
	ReloadInvalid         = "invalid"
	ReloadRestartRequired = "restart-required"
	ReloadFailed          = "failed"
)

// Reloader is the one reload path behind every trigger: it reads the file, loads and validates
// it with the same loader as `ravel config validate`, refuses changes only a restart can make,
// and hands a good config to the running role. A config that fails any step changes nothing:
// the last good one keeps running.
type Reloader struct {
	// Path is the config file.
	Path string
	// Parse loads a config from the file's bytes (config.Parse plus the command line's node
	// overrides).
	Parse func(name string, data []byte) (*config.Config, error)
	// Apply hands a validated config to the running role and returns once the role runs it;
	// an error means the role refused it and still runs old. A kernel apply that fails after
	// the role took the config is not an error here: the role retries with a full resync.
	Apply func(ctx context.Context, old, cfg *config.Config) error
	// Reloading and Reloaded are called around every reload that reads a changed file (for
	// systemd's RELOADING=1 / READY=1 and its status line); Reloaded gets the outcome, after
	// the metrics and the status show it. Either may be nil.
	Reloading func()
	Reloaded  func(ReloadReport)
	Log       *slog.Logger
	Metrics   *Metrics
	Status    *Status
	// Read reads the file (config.ReadFile when nil; ravel run gives config.Cache.ReadFile,
	// which reuses the memory of bytes the cache no longer needs).
	Read func(path string) ([]byte, error)
	// StartData, when known, are the bytes the config given to Start was parsed from: the
	// first reload compares the file with them instead of hashing it (168 ms of a 7 MB
	// file's reload under the QEMU guest's emulation). May be nil.
	StartData []byte

	mu          sync.Mutex // serializes reloads; guards the fields below
	running     *config.Config
	lastAttempt [32]byte // hash of the bytes last tried, good or bad, until lastData is known
	lastData    []byte   // the bytes last tried (shared with the config.Cache, no copy)
}

// Start records cfg, the config the daemon started with, as running and sets the reload
// metrics for it. Call once, before Reload.
func (r *Reloader) Start(cfg *config.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running, r.lastAttempt, r.lastData = cfg, cfg.Hash, r.StartData
	r.setRunning(nil, cfg)
	r.Metrics.ReloadOK.Set(1)
	r.Metrics.ReloadOKTime.Set(float64(time.Now().Unix()))
}

// Running returns the config in effect.
func (r *Reloader) Running() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Reload runs one reload and returns its result (one of the Reload* constants) and error.
func (r *Reloader) Reload(ctx context.Context, trigger string) (result string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	var findings []config.Finding
	notified := false // Reloading was called: Reloaded must follow
	defer func() {
		if result == ReloadUnchanged {
			r.Log.Debug("config file unchanged; nothing to reload", "file", r.Path, "trigger", trigger)
			return
		}
		// Every exit path below sets the metrics and the status. The gauges and the status
		// first, the counter after them: a scraper that waits for the attempt to be counted
		// must then read its outcome. systemd hears last.
		rep := ReloadReport{Time: start, Trigger: trigger, Result: result, Findings: findings}
		if result == ReloadOK {
			r.Metrics.ReloadOK.Set(1)
			r.Metrics.ReloadOKTime.Set(float64(time.Now().Unix()))
			r.Log.Info("config reloaded", "file", r.Path, "trigger", trigger, "hash", hex.EncodeToString(r.running.Hash[:8]),
				"warnings", len(findings), "took", time.Since(start).Round(time.Millisecond))
		} else {
			r.Metrics.ReloadOK.Set(0)
			rep.Error = err.Error()
			r.Log.Error("config reload refused; the previous config keeps running", "file", r.Path, "trigger", trigger,
				"result", result, "findings", len(findings), "err", firstLine(err))
		}
		for _, f := range findings {
			r.Log.Warn("config finding", "finding", f.String())
		}
		r.Status.RecordReload(rep)
		r.Metrics.Reloads.WithLabelValues(trigger, result).Inc()
		if notified && r.Reloaded != nil {
			r.Reloaded(rep)
		}
	}()

	read := r.Read
	if read == nil {
		read = config.ReadFile
	}
	data, err := read(r.Path)
	if err != nil {
		r.lastAttempt, r.lastData = [32]byte{}, nil
		return ReloadInvalid, err
	}
	// Comparing the bytes is a memcmp; hashing them again (Parse hashes them once) took as
	// long as the rest of reading a 7 MB file.
	var same bool
	if r.lastData != nil {
		same = bytes.Equal(data, r.lastData)
	} else {
		same = sha256.Sum256(data) == r.lastAttempt
	}
	if trigger == TriggerFile && same {
		return ReloadUnchanged, nil
	}
	if trigger == TriggerFile && len(bytes.TrimSpace(data)) == 0 {
		// A writer that truncates and then writes (`cat > file`, some editors) can be read
		// in between, after the debounce. An empty file is never a config: wait for the
		// content rather than refuse it. (SIGHUP still reports it.)
		r.Log.Info("config file is empty; waiting for its content", "file", r.Path)
		return ReloadUnchanged, nil
	}
	r.lastData = data
	if r.Reloading != nil {
		r.Reloading()
	}
	notified = true
	cfg, err := r.Parse(r.Path, data)
	if err != nil {
		var ce *config.Errors
		if errors.As(err, &ce) {
			findings = append(append(findings, ce.Errors...), ce.Warnings...)
			return ReloadInvalid, fmt.Errorf("%s: %d error(s)", r.Path, len(ce.Errors))
		}
		return ReloadInvalid, err
	}
	findings = cfg.Warnings
	if rr := RestartRequired(r.running, cfg); len(rr) > 0 {
		findings = append(rr, findings...)
		return ReloadRestartRequired, fmt.Errorf("%s: %d change(s) need a restart of ravel", r.Path, len(rr))
	}
	if err := r.Apply(ctx, r.running, cfg); err != nil {
		return ReloadFailed, err
	}
	old := r.running
	r.running = cfg
	r.setRunning(old, cfg)
	r.Status.SetConfig(cfg)
	return ReloadOK, nil
}

// setRunning points the config metrics at cfg. Call with r.mu held.
func (r *Reloader) setRunning(old, cfg *config.Config) {
	if old != nil {
		r.Metrics.ConfigInfo.DeleteLabelValues(hex.EncodeToString(old.Hash[:]), old.File)
	}
	r.Metrics.ConfigInfo.WithLabelValues(hex.EncodeToString(cfg.Hash[:]), cfg.File).Set(1)
	r.Metrics.Normalizations.Reset()
	for _, w := range cfg.Warnings {
		r.Metrics.Normalizations.WithLabelValues(fieldOf(w.Path)).Inc()
	}
}

var listIndex = regexp.MustCompile(`\[[^\]]*\]`)

// fieldOf turns a finding's path into a bounded metric label: "services[3].vip" → "services.vip".
func fieldOf(path string) string { return listIndex.ReplaceAllString(path, "") }

func firstLine(err error) string {
	s := err.Error()
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}

// RestartRequired lists, as findings, the changes from old to cfg that the running daemon
// cannot make: its identity (node), the chain names it owns, the coordinator it listens on or
// probes, the metrics listener, and whether it watches Kubernetes at all. Everything else —
// services, VIPs, pool, IPVS options, sysctls, colocation, ARP and resync periods, the
// kubernetes section's contents — is applied live.
func RestartRequired(old, cfg *config.Config) []config.Finding {
	var out []config.Finding
	add := func(path, what string) {
		out = append(out, config.Finding{Severity: config.SeverityError, File: cfg.File, Path: path,
			Message: what + " cannot change while ravel runs; restart it to apply (the previous config keeps running)"})
	}
	if !reflect.DeepEqual(old.Node, cfg.Node) {
		add("node", "this node's identity and devices")
	}
	if old.IPTables.Chain != cfg.IPTables.Chain {
		add("iptables.chain", "the chain prefix ravel owns")
	}
	if old.IPTables.Backend != cfg.IPTables.Backend {
		add("iptables.backend", "the iptables backend")
	}
	if old.Rules.Backend != cfg.Rules.Backend {
		add("rules.backend", "the rules backend (iptables or nftables)")
	}
	if old.Rules.Table != cfg.Rules.Table {
		add("rules.table", "the nftables table ravel owns")
	}
	if old.Coordinator.Listen != cfg.Coordinator.Listen || !slices.Equal(old.Coordinator.Ports, cfg.Coordinator.Ports) ||
		old.Coordinator.FailoverTimeout != cfg.Coordinator.FailoverTimeout {
		add("coordinator", "the coordinator address, ports and failover timeout")
	}
	if old.Metrics.Listen != cfg.Metrics.Listen {
		add("metrics.listen", "the metrics listener")
	}
	if (old.BGP == nil) != (cfg.BGP == nil) || old.BGP != nil &&
		(old.BGP.ASN != cfg.BGP.ASN || !reflect.DeepEqual(old.BGP.RouterID, cfg.BGP.RouterID) || old.BGP.ListenPort != cfg.BGP.ListenPort) {
		add("bgp", "the BGP speaker's asn, routerId and listenPort (and adding or removing the section)")
	}
	if old.Health.Listen != cfg.Health.Listen {
		add("health.listen", "the health endpoint's listener")
	}
	if (old.Kubernetes == nil) != (cfg.Kubernetes == nil) {
		add("kubernetes", "adding or removing the kubernetes section")
	}
	return out
}

// Triggers queues reload requests from the file watcher and SIGHUP for one reload loop. A
// request made while one of the same trigger is queued is merged into it.
type Triggers struct {
	ch     chan string
	mu     sync.Mutex // guards queued
	queued map[string]bool
}

// NewTriggers returns an empty queue.
func NewTriggers() *Triggers { return &Triggers{ch: make(chan string, 2), queued: map[string]bool{}} }

// Request queues a reload by trigger; it never blocks.
func (t *Triggers) Request(trigger string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queued[trigger] {
		return
	}
	t.queued[trigger] = true
	t.ch <- trigger // capacity 2, one per trigger: never blocks
}

// Run reloads once per queued trigger until ctx ends.
func (t *Triggers) Run(ctx context.Context, r *Reloader) {
	for {
		select {
		case <-ctx.Done():
			return
		case trig := <-t.ch:
			t.mu.Lock()
			delete(t.queued, trig)
			t.mu.Unlock()
			_, _ = r.Reload(ctx, trig) // logged, counted and recorded by Reload
		}
	}
}
