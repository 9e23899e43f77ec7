package main

import (
	"context"
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/kube"
)

// startEnv sets up what every role runs with: metrics, status, the reloader behind the file
// watch and SIGHUP (started by the role once it can take a config), systemd notifications, and
// the HTTP endpoints. Nothing touches the kernel here.
func startEnv(ctx context.Context, cfg *configT, cache *config.Cache, node nodeT, file string, watch bool, nf *nodeFlags, triggers *daemon.Triggers, log *slog.Logger) (*runEnv, error) {
	// A reload parses with the same loader and the same command-line overrides.
	parse := func(name string, data []byte) (*configT, error) {
		c, err := cache.Parse(name, data)
		if err != nil {
			return nil, err
		}
		if _, err := nf.apply(c); err != nil {
			return nil, err
		}
		return c, nil
	}
	notify := newNotifier(log)
	go func() {
		<-ctx.Done()
		notify.Stopping()
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(reg)
	status := daemon.NewStatus(version, cfg)
	env := &runEnv{cfg: cfg, node: node, reg: reg, m: daemon.NewMetrics(reg), status: status, log: log}
	env.reloader = &daemon.Reloader{Path: file, Parse: parse, Log: log, Metrics: env.m, Status: status, StartData: cache.Bytes(file), Read: cache.ReadFile}
	env.reloader.Start(cfg)
	// RELOADING/READY only once systemd was told READY=1: a reload during start-up
	// must not report the service up before its first sync.
	var ready atomic.Bool
	env.reloader.Reloading = func() {
		if ready.Load() {
			notify.Reloading()
		}
	}
	env.reloader.Reloaded = func(rep daemon.ReloadReport) {
		if ready.Load() {
			notify.Reloaded(rep)
		}
	}
	go func() {
		select {
		case <-status.Synced():
			ready.Store(true)
			notify.Ready()
			log.Info("first sync done: ready")
		case <-ctx.Done():
		}
	}()
	env.startReloads = func(ctx context.Context) {
		go triggers.Run(ctx, env.reloader)
		if !watch {
			return
		}
		go func() {
			if err := daemon.WatchFile(ctx, file, daemon.DefaultFileDebounce, log, func() { triggers.Request(daemon.TriggerFile) }); err != nil {
				log.Error("config file watch failed; SIGHUP still reloads", "err", err)
			}
		}()
	}
	if cfg.Kubernetes != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ravel_kube_snapshot_age_seconds",
			Help: "Age of the Kubernetes snapshot the daemon programs from (how long since the last one arrived)."},
			func() float64 { return status.SnapshotAge().Seconds() }))
	}
	if cfg.Metrics.Listen != "" {
		h := daemon.NewHTTPHandler(reg, status.Ready, status.Report)
		if _, err := daemon.StartHTTP(ctx, cfg.Metrics.Listen, h, log); err != nil {
			return nil, &exitError{exitInvalid, err}
		}
	}
	return env, nil
}

// runEnv is what every role is run with.
type runEnv struct {
	cfg      *configT
	node     nodeT
	ifAddr   netip.Addr // node.interface's first IPv4 address (invalid when it has none)
	reg      *prometheus.Registry
	m        *daemon.Metrics
	status   *daemon.Status
	log      *slog.Logger
	reloader *daemon.Reloader
	// startReloads starts the reload loop and the file watch; a role calls it once its
	// reloader.Apply is set.
	startReloads func(context.Context)
}

// kubeFeed starts the Kubernetes feed when the config has a kubernetes section; nil without.
func (e *runEnv) kubeFeed(ctx context.Context) (*daemon.KubeFeed, error) {
	if e.cfg.Kubernetes == nil {
		return nil, nil
	}
	feed := daemon.NewKubeFeed(kubeOptions, func(c *configT, standby bool) (*kube.Source, error) {
		return kubeSource(c, e.reg, e.log, standby)
	}, e.log)
	if err := feed.Start(ctx, e.cfg); err != nil {
		return nil, err
	}
	e.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ravel_kube_reload_watches_pending_seconds",
		Help: "How long the Kubernetes watches of a reload have waited to sync and take over (0: none pending; the previous watches feed meanwhile)."},
		func() float64 { return feed.PendingFor().Seconds() }))
	return feed, nil
}

// applyWith returns a reload's Apply: build the new Kubernetes watches if they change (an error
// refuses the config), hand the config to the role, then let the new watches take over.
func applyWith(feed *daemon.KubeFeed, role func(context.Context, *configT) error) func(context.Context, *configT, *configT) error {
	return func(ctx context.Context, _, cfg *configT) error {
		commit := func(context.Context) {}
		if feed != nil {
			c, err := feed.Prepare(cfg)
			if err != nil {
				return err
			}
			commit = c
		}
		if err := role(ctx, cfg); err != nil {
			return err
		}
		commit(ctx)
		return nil
	}
}

// registerBuildInfo adds ravel_build_info.
func registerBuildInfo(reg prometheus.Registerer) {
	rev := buildRevision()
	if rev == "" {
		rev = "unknown"
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ravel_build_info",
		Help: "1, labelled with ravel's version, VCS revision and Go version."}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(version, rev, runtime.Version()).Set(1)
	reg.MustRegister(g)
}
