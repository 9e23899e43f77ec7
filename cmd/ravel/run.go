package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/reconcile"
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
	var file, logFormat, logLevel, cpuProfile string
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
programs VIPs and the rules to its local pods (rules.backend: iptables chains or ravel's
nftables table; VIPs it has no pod of are served to its own processes and pods through
other nodes' pods, rules.inZone) while the director is gone; on SIGTERM it removes them
within 5 s.

Reload: the config file's directory is watched (edits, renames, ConfigMap symlink swaps),
and SIGHUP reloads it too. A file that fails to load, or that changes what needs a restart
(node, iptables.chain, iptables.backend, rules.backend, rules.table, coordinator,
metrics.listen, adding or removing kubernetes), changes
nothing: the last good config keeps running, every finding is logged with its position, and
ravel_config_last_reload_successful drops to 0 until a good file is applied.

As bgp it is a director that announces, instead of ARP, each VIP with a healthy destination
as a /32 or /128 route to the bgp peers of its family (embedded GoBGP), and withdraws it when none is left; on
SIGTERM it withdraws every route, then closes the sessions, unless a peer has
gracefulRestart: then the routes stay on the peers for its restartTime and the next start
takes them back without a withdrawal. SIGUSR1 withdraws every route (before maintenance)
and SIGUSR2 announces again.

HTTP on metrics.listen: /metrics, /healthz, /readyz, /status (see "ravel status").
Signals: SIGTERM/SIGINT stop; SIGHUP reloads; SIGCONT is logged and ignored; bgp role:
SIGUSR1/SIGUSR2 drain and undrain.
Under systemd (Type=notify) it reports READY=1 after its first successful sync,
RELOADING=1/READY=1 around each reload and STOPPING=1 on stop.`,
		Example: "  ravel run --config /etc/ravel/ravel.yaml\n  ravel run --config director.yaml --node-name node-a --log-format json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if cpuProfile != "" {
				stopProfile, err := startCPUProfile(cpuProfile)
				if err != nil {
					return &exitError{exitUsage, err}
				}
				defer stopProfile()
			}
			// One cache for the start and every reload: a reload parses again only the
			// services whose text changed.
			cache := &config.Cache{}
			cfg, err := loadCached(cache, file)
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
			addrs, err := interfaceAddrs(cfg.Node.Interface)
			if err != nil {
				log.Warn("cannot list the addresses of node.interface: VIPs are not checked against them", "interface", cfg.Node.Interface, "err", err)
			}
			if err := checkNodeAddrs(cfg, addrs); err != nil {
				return &exitError{exitInvalid, err}
			}
			node.Health, node.Health6 = daemon.HealthAddrs(cfg, addrs)
			node.Addrs = addrs
			triggers := daemon.NewTriggers()
			ctx, stop := signalContext(cmd.Context(), log, func() { triggers.Request(daemon.TriggerSignal) })
			defer stop()
			env, err := startEnv(ctx, cfg, cache, node, file, watch, &nf, triggers, log)
			if err != nil {
				return err
			}
			log.Info("ravel starting", "version", version, "config", cfg.File, "node", node.Name, "role", node.Role,
				"services", len(cfg.Services), "kubernetes", cfg.Kubernetes != nil, "watch_config", watch)

			env.ifAddr = firstIPv4(addrs)
			switch node.Role {
			case schema.RoleDirector, schema.RoleBGP:
				return runDirector(ctx, env)
			case schema.RoleRealserver:
				return runRealserver(ctx, env)
			}
			return &exitError{exitUsage, fmt.Errorf("role %q is not supported by ravel run", node.Role)}
		},
	}
	c.Flags().StringVarP(&file, "config", "c", "/etc/ravel/ravel.yaml", "ClusterConfig file")
	c.Flags().BoolVar(&watch, "watch-config", true, "reload when the config file changes (SIGHUP always reloads)")
	c.Flags().StringVar(&coordinatorHost, "coordinator-host", coordinatorHost, "realserver: host whose first coordinator port is probed to tell whether the director is alive (default: coordinator.listen)")
	c.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	c.Flags().StringVar(&cpuProfile, "cpu-profile", "", "write a Go CPU profile of the whole run to this file (read it with go tool pprof; for performance reports)")
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug (adds every plan in full), info, warn or error")
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

func runDirector(ctx context.Context, env *runEnv) error {
	cfg, log := env.cfg, env.log
	k, closeKernel, err := openKernel()
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	defer closeKernel()
	var garp daemon.Announcer
	if cfg.Node.Interface != "" && env.node.Role == schema.RoleDirector { // bgp announces by BGP
		gw := netip.Addr{}
		if cfg.Node.Gateway != nil {
			gw = *cfg.Node.Gateway
		}
		g, err := netops.NewNeighbours(cfg.Node.Interface, gw)
		if err != nil {
			log.Warn("gratuitous ARP and neighbour advertisements disabled", "err", err)
		} else {
			defer g.Close()
			garp = g
		}
	}
	coord, err := daemon.ListenCoordinator(cfg.Coordinator.Listen.String(), cfg.Coordinator.Ports, netops.ProcSockets{})
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
	checks := daemon.NewChecks(env.m, cfg.Health.MaxInFlight)
	d.SetChecks(checks)
	go checks.Run(ctx)
	d.SetManagement(daemon.NewManagementListener(env.node.Name, log))
	rec := daemon.NewSysctlRecord(daemon.DefaultStateDir)
	d.SetSysctlRecord(&rec)
	// Isolated directors get the rules too: they remove what a colocated run left.
	rb, err := openRules(cfg, cfg.Colocation == schema.ColocationColocated, log)
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	if rb.ipt != nil {
		d.SetColocated(rb.ipt)
		d.SetColocated6(func() (iptables.Tables, error) {
			return openTables(cfg.IPTables.Chain, cfg.IPTables.Backend, family.IPv6)
		})
	}
	d.SetNFTables(rb.nft, rb.useNFT)
	if cfg.Colocation == schema.ColocationColocated {
		env.status.SetRules(rb.describe(cfg))
	}
	reload := d.Reload
	if env.node.Role == schema.RoleBGP {
		sp, stopBGP, err := startBGP(ctx, cfg, env.ifAddr, d, env.m, env.status, log)
		if err != nil {
			return &exitError{exitInvalid, err}
		}
		defer stopBGP()
		d.SetBGP(sp)
		reload = func(ctx context.Context, c *configT) error {
			if err := d.Reload(ctx, c); err != nil {
				return err
			}
			// Peers by diff: an unchanged peer keeps its session; new attributes re-announce.
			bc, peers := bgpConfig(c, env.ifAddr)
			return errors.Join(sp.SetPeers(ctx, peers), sp.SetAttributes(bc))
		}
	}
	env.reloader.Apply = applyWith(feed, reload)
	env.startReloads(ctx)
	// A realserver role running on this node (the director was gone) must stand down before
	// the director programs the node again: it probes the coordinator port once a second and,
	// seeing it answer, removes its chains and VIPs. Programming before that would have our
	// VIPs and colocated chains removed under us until the next resync. The kernel keeps
	// forwarding meanwhile, so the wait costs no traffic. (A reload meanwhile waits for Run.)
	// In Kubernetes mode that realserver first drains for its drain delay (see Watcher).
	if wait, why := standDownWait(k.Links, cfg); wait > 0 {
		log.Info("waiting for a realserver role on this node to stand down before programming", "wait", wait, "why", why)
		if err := sleepCtx(ctx, wait); err != nil {
			return nil
		}
	} else {
		log.Debug("no realserver role active on this node: programming at once", "why", why)
	}
	return d.Run(ctx, snaps)
}

// addrDeviceLister lists every address of the node with its devices (netops.KernelLinks and
// its fake).
type addrDeviceLister interface {
	AddrDevices() (map[netip.Addr][]string, error)
}

// standDownWait is how long a starting director waits, its coordinator ports open, before it
// programs, and why: coordinatorSettle plus the drain delay when a realserver role is active
// on this node, nothing otherwise. An active realserver binds the pool's VIPs on its own
// device (lo, or its --vip-interface); the director binds them only on node.vipInterface. So
// an owned VIP on any other device says a realserver is active, and none says there is nothing
// to stand down (a dedicated director, the common case, starts at once). A realserver still
// on standby sees the open coordinator port at its next probe and never takes over. When the
// addresses cannot be listed, or the director's own device is lo (where a realserver's VIPs
// would look like its own), it waits.
func standDownWait(links netops.Links, cfg *configT) (time.Duration, string) {
	wait := coordinatorSettle + daemon.DrainDelay(cfg)
	if wait <= 0 {
		return 0, "no stand-down wait configured"
	}
	if cfg.Node.VIPInterface == "lo" {
		return wait, "node.vipInterface is lo, where a realserver role's VIPs would be too"
	}
	l, ok := links.(addrDeviceLister)
	if !ok {
		return wait, "cannot list the node's addresses"
	}
	devs, err := l.AddrDevices()
	if err != nil {
		return wait, "cannot list the node's addresses: " + err.Error()
	}
	owned := reconcile.OwnedVIPs(cfg)
	for _, vip := range slices.SortedFunc(maps.Keys(owned), netip.Addr.Compare) {
		for _, dev := range devs[vip] {
			if dev != cfg.Node.VIPInterface {
				return wait, fmt.Sprintf("VIP %s is bound on %s", vip, dev)
			}
		}
	}
	return 0, "no VIP of the pool is bound outside " + cfg.Node.VIPInterface
}
