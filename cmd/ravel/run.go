package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/schema"
)

func init() { extraCommands = append(extraCommands, newRunCmd) }

var timeNow = time.Now

// coordinatorSettle is how long a starting director waits, with its coordinator ports open,
// before programming: a realserver probe interval (1 s), its clean-up, and slack.
const coordinatorSettle = 3 * time.Second

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

Signals: SIGTERM/SIGINT stop; SIGHUP is logged (reload arrives with a later release:
restart to apply a changed file); SIGCONT is logged and ignored.`,
		Example: "  ravel run --config /etc/ravel/config.yaml\n  ravel run --config director.yaml --node-name node-a --log-format json",
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
				log.Warn("config normalized", "file", w.File, "line", w.Line, "column", w.Column, "path", w.Path, "msg", w.Message)
			}
			node, err := nf.apply(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context(), log)
			defer stop()

			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			if cfg.Metrics.Listen != "" {
				if err := serveMetrics(ctx, cfg.Metrics.Listen, reg, log); err != nil {
					return &exitError{exitInvalid, err}
				}
			}
			log.Info("ravel starting", "version", version, "config", cfg.File, "node", node.Name, "role", node.Role,
				"services", len(cfg.Services), "kubernetes", cfg.Kubernetes != nil)

			switch node.Role {
			case schema.RoleDirector:
				return runDirector(ctx, cfg, node, reg, log)
			case schema.RoleRealserver:
				return runRealserver(ctx, cfg, node, reg, log)
			}
			return &exitError{exitUsage, fmt.Errorf("role %q is not supported by ravel run", node.Role)}
		},
	}
	c.Flags().StringVarP(&file, "config", "c", "/etc/ravel/config.yaml", "ClusterConfig file")
	c.Flags().StringVar(&coordinatorHost, "coordinator-host", coordinatorHost, "realserver: host whose first coordinator port is probed to tell whether the director is alive")
	c.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	nf.register(c.Flags())
	return c
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
// terminate the daemon (SIGHUP's default action would); each is logged.
func signalContext(parent context.Context, log *slog.Logger) (context.Context, context.CancelFunc) {
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
					log.Warn("SIGHUP received: live reload is not implemented yet; restart ravel to apply a changed file")
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

func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
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
	log.Info("metrics listening", "addr", ln.Addr().String())
	return nil
}

func runDirector(ctx context.Context, cfg *configT, node nodeT, reg *prometheus.Registry, log *slog.Logger) error {
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
	snaps, err := startKube(ctx, cfg, reg, log)
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	d := daemon.NewDirector(cfg, node, k, garp, log, daemon.NewMetrics(reg))
	tables, err := iptables.New(cfg.IPTables.Chain)
	switch {
	case err == nil:
		// Isolated directors get the tables too: they remove chains a colocated run left.
		d.SetColocated(tables)
	case cfg.Colocation == schema.ColocationColocated:
		return &exitError{exitInvalid, err}
	default:
		log.Warn("iptables unavailable: chains of an earlier colocated run cannot be removed", "err", err)
	}
	// A realserver role running on this node (the director was gone) must stand down before
	// the director programs the node again: it probes the coordinator port once a second and,
	// seeing it answer, removes its chains and VIPs. Programming before that would have our
	// VIPs and colocated chains removed under us until the next resync. The kernel keeps
	// forwarding meanwhile, so the wait costs no traffic.
	if err := sleepCtx(ctx, coordinatorSettle); err != nil {
		return nil
	}
	return d.Run(ctx, snaps)
}
