package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/schema"
)

func init() { extraCommands = append(extraCommands, newRunCmd) }

var timeNow = time.Now

// coordinatorSettle is how long a starting director waits, with its coordinator ports open,
// before programming: a realserver probe interval (1 s), its clean-up, and slack.
var coordinatorSettle = 3 * time.Second

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func newRunCmd() *cobra.Command {
	var file, logFormat, logLevel string
	var watch bool
	var nf nodeFlags
	c := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the ravel daemon for this node's role",
		Long: `Run the ravel daemon.

As a director it programs IPVS virtual services, binds VIPs on node.vipInterface and
announces them with gratuitous ARP, then keeps the kernel converged: on every Kubernetes
change, and on a full resync every "resync" period that repairs drift (a service deleted
by hand, a VIP removed). On SIGTERM or SIGINT it exits and leaves the kernel as it is, so a
restart never drops a VIP: the next start adopts what is there and converges by diff.
As a realserver it stands by while its director answers on the coordinator port, and
programs VIPs and iptables chains for its local pods while the director is gone; on SIGTERM
it removes them within 5 s.

Reload: the config file's directory is watched (edits, renames, ConfigMap symlink swaps),
and SIGHUP reloads it too. A file that fails to load, or that changes what needs a restart
(node, iptables.chain, coordinator, metrics.listen, adding or removing kubernetes), changes
nothing: the last good config keeps running, every finding is logged with its position, and
ravel_config_last_reload_successful drops to 0 until a good file is applied.

HTTP on metrics.listen: /metrics, /healthz, /readyz, /status (see "ravel status").
Signals: SIGTERM/SIGINT stop; SIGHUP reloads; SIGCONT is logged and ignored.
Under systemd (Type=notify) it reports READY=1 after its first successful sync,
RELOADING=1/READY=1 around each reload and STOPPING=1 on stop.`,
		Example: "  ravel run --config /etc/ravel/ravel.yaml\n  ravel run --config director.yaml --node-name node-a --log-format json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			cfg, err := loadForCommand(file)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				log.Warn("config normalized", "finding", w.String())
			}
			node, err := nf.apply(cfg)
			if err != nil {
				return err
			}
			// A reload parses with the same loader and the same command-line overrides.
			parse := func(name string, data []byte) (*configT, error) {
				c, err := config.Parse(name, data)
				if err != nil {
					return nil, err
				}
				if _, err := nf.apply(c); err != nil {
					return nil, err
				}
				return c, nil
			}
			triggers := daemon.NewTriggers()
			ctx, stop := signalContext(cmd.Context(), log, func() { triggers.Request(daemon.TriggerSignal) })
			defer stop()
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
			env.reloader = &daemon.Reloader{Path: file, Parse: parse, Log: log, Metrics: env.m, Status: status}
			env.reloader.Start(cfg)
			// RELOADING/READY only once systemd was told READY=1: a reload during start-up
			// must not report the service up before its first sync.
			var ready atomic.Bool
			env.reloader.Reloading = func() {
				if ready.Load() {
					notify.Reloading()
				}
			}
			env.reloader.Reloaded = func() {
				if ready.Load() {
					notify.Ready()
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
				if err := serveHTTP(ctx, cfg.Metrics.Listen, reg, status, log); err != nil {
					return &exitError{exitInvalid, err}
				}
			}
			log.Info("ravel starting", "version", version, "config", cfg.File, "node", node.Name, "role", node.Role,
				"services", len(cfg.Services), "kubernetes", cfg.Kubernetes != nil, "watch_config", watch)

			switch node.Role {
			case schema.RoleDirector:
				return runDirector(ctx, env)
			case schema.RoleRealserver:
				return runRealserver(ctx, env)
			}
			return &exitError{exitUsage, fmt.Errorf("role %q is not supported by ravel run", node.Role)}
		},
	}
	c.Flags().StringVarP(&file, "config", "c", "/etc/ravel/ravel.yaml", "ClusterConfig file")
	c.Flags().BoolVar(&watch, "watch-config", true, "reload when the config file changes (SIGHUP always reloads)")
	c.Flags().StringVar(&coordinatorHost, "coordinator-host", coordinatorHost, "realserver: host whose first coordinator port is probed to tell whether the director is alive")
	c.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug (adds every plan in full), info, warn or error")
	nf.register(c.Flags())
	return c
}

// runEnv is what every role is run with.
type runEnv struct {
	cfg      *configT
	node     nodeT
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

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

// signalContext ends on SIGTERM or SIGINT. SIGHUP and SIGCONT are caught so that they never
// terminate the daemon (SIGHUP's default action would); each is logged, and SIGHUP calls
// onHUP (a reload).
func signalContext(parent context.Context, log *slog.Logger, onHUP func()) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGCONT)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				switch s {
				case syscall.SIGHUP:
					log.Info("SIGHUP received: reloading the config")
					if onHUP != nil {
						onHUP()
					}
				case syscall.SIGCONT:
					log.Info("SIGCONT received and ignored")
				default:
					log.Info("signal received, stopping", "signal", s.String())
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// serveHTTP serves /metrics, /healthz (the process answers), /readyz (a config is loaded, the
// first sync is done and the last good one is recent) and /status (JSON, see daemon.Report).
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, status *daemon.Status, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := status.Ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status.Report())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server failed", "err", err)
		}
	}()
	log.Info("HTTP listening: /metrics /healthz /readyz /status", "addr", ln.Addr().String())
	return nil
}

func runDirector(ctx context.Context, env *runEnv) error {
	cfg, log := env.cfg, env.log
	k, closeKernel, err := openKernel()
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	defer closeKernel()
	var garp daemon.Announcer
	if cfg.Node.Interface != "" {
		gw := netip.Addr{}
		if cfg.Node.Gateway != nil {
			gw = *cfg.Node.Gateway
		}
		g, err := netops.NewGARP(cfg.Node.Interface, gw)
		if err != nil {
			log.Warn("gratuitous ARP disabled", "err", err)
		} else {
			defer g.Close()
			garp = g
		}
	}
	coord, err := daemon.ListenCoordinator("", cfg.Coordinator.Ports)
	if err != nil {
		return &exitError{exitInvalid, fmt.Errorf("refusing to start: %w", err)}
	}
	defer coord.Close()
	env.m.DirectorPresent.Set(1)
	feed, err := env.kubeFeed(ctx)
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	var snaps <-chan *kube.Snapshot
	if feed != nil {
		snaps = feed.Snapshots()
	}
	d := daemon.NewDirector(cfg, env.node, k, garp, log, env.m)
	d.SetStatus(env.status)
	tables, err := openTables(cfg.IPTables.Chain)
	switch {
	case err == nil:
		// Isolated directors get the tables too: they remove chains a colocated run left.
		d.SetColocated(tables)
	case cfg.Colocation == schema.ColocationColocated:
		return &exitError{exitInvalid, err}
	default:
		log.Warn("iptables unavailable: chains of an earlier colocated run cannot be removed", "err", err)
	}
	env.reloader.Apply = applyWith(feed, d.Reload)
	env.startReloads(ctx)
	// A realserver role running on this node (the director was gone) must stand down before
	// the director programs the node again: it probes the coordinator port once a second and,
	// seeing it answer, removes its chains and VIPs. Programming before that would have our
	// VIPs and colocated chains removed under us until the next resync. The kernel keeps
	// forwarding meanwhile, so the wait costs no traffic. (A reload meanwhile waits for Run.)
	if err := sleepCtx(ctx, coordinatorSettle); err != nil {
		return nil
	}
	return d.Run(ctx, snaps)
}
