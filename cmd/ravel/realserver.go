package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/health"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
)

// coordinatorHost is where a realserver looks for the director's coordinator port; empty means
// coordinator.listen, where the director process on this same node listens (a director node
// that also serves as realserver takes the realserver role only while its director is gone).
var coordinatorHost = ""

// coordinatorProbeHost is the host a realserver probes: the flag, else coordinator.listen.
func coordinatorProbeHost(cfg *configT) string {
	if coordinatorHost != "" {
		return coordinatorHost
	}
	return cfg.Coordinator.Listen.String()
}

// isLocal reports whether host is an address of this machine, whose /proc shows its sockets.
func isLocal(host string) bool {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false // a host name: another machine's director
	}
	if a.IsLoopback() {
		return true
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a.Unmap() {
			return true
		}
	}
	return false
}

func runRealserver(ctx context.Context, env *runEnv) error {
	cfg, log := env.cfg, env.log
	links, closeLinks, err := openLinks()
	if err != nil {
		return &exitError{exitInvalid, fmt.Errorf("opening netlink: %w", err)}
	}
	defer closeLinks()
	rb, err := openRules(cfg, true, log)
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	var latest *daemon.Latest
	feed, err := env.kubeFeed(ctx)
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	if feed != nil {
		latest = daemon.NewLatest()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case s := <-feed.Snapshots():
					latest.Set(s)
					env.status.SetSnapshot(time.Now())
				}
			}
		}()
	}
	rs := daemon.NewRealserver(cfg, env.node, links, newSysctl(), rb.ipt, latest, log, env.m)
	rs.SetNFTables(rb.nft, rb.useNFT)
	env.status.SetRules(rb.describe(cfg))
	rs.SetTables6(func() (iptables.Tables, error) {
		return openTables(cfg.IPTables.Chain, cfg.IPTables.Backend, family.IPv6)
	})
	rs.SetStatus(env.status)
	rec := daemon.NewSysctlRecord(daemon.DefaultStateDir)
	rs.SetSysctlRecord(&rec)
	var nh *daemon.NodeHealth
	if cfg.Kubernetes != nil {
		// The health endpoint outlives ctx: after SIGTERM it answers "draining" for the drain
		// delay while the rules still forward, and stops only when the rules are gone.
		hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
		defer hcancel()
		nh = daemon.NewNodeHealth(env.node.Name)
		rs.SetNodeHealth(nh)
		// One listener per address of node.interface (IPv4 and IPv6: the director checks the
		// node on its address of each family); on all addresses when it has neither.
		var addrs []string
		for _, ap := range []netip.AddrPort{env.node.Health, env.node.Health6} {
			if ap.IsValid() {
				addrs = append(addrs, ap.String())
			}
		}
		if len(addrs) == 0 {
			addrs = []string{cfg.Health.Listen}
		}
		for _, addr := range addrs {
			_, err := daemon.StartHealthHTTP(hctx, addr, health.NewHandler(nh.View), log)
			switch {
			case err == nil:
			case addr == env.node.Health6.String():
				// An IPv6 address stays tentative for a moment after it appears (duplicate
				// address detection), and cannot be bound meanwhile: keep trying.
				log.Warn("health endpoint: cannot listen on the IPv6 address yet; retrying every second", "listen", addr, "err", err)
				go retryHealthHTTP(hctx, addr, health.NewHandler(nh.View), log)
			default:
				return &exitError{exitInvalid, err}
			}
		}
	}
	env.reloader.Apply = applyWith(feed, func(_ context.Context, c *configT) error {
		rs.Reload(c)
		return nil
	})
	env.startReloads(ctx)
	w := &daemon.Watcher{
		Addr:            net.JoinHostPort(coordinatorProbeHost(cfg), strconv.Itoa(cfg.Coordinator.Ports[0])),
		Interval:        time.Second,
		FailoverTimeout: cfg.Coordinator.FailoverTimeout.D(),
		Role:            daemon.NewRoleController(rs),
		Log:             log,
		Metrics:         env.m,
		Status:          env.status,
		Health:          nh,
		DrainDelay:      daemon.DrainDelay(cfg),
	}
	if isLocal(coordinatorProbeHost(cfg)) {
		// Any uid may listen on this node's ports: only root's listener is the director.
		w.Sockets = netops.ProcSockets{}
	}
	log.Info("realserver waiting for the director to be gone before taking over", "coordinator", w.Addr, "failover_timeout", w.FailoverTimeout)
	return w.Run(ctx)
}

// retryHealthHTTP starts the health endpoint on addr once it can, trying every second until
// ctx ends.
func retryHealthHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := daemon.StartHealthHTTP(ctx, addr, h, log); err == nil {
			log.Info("health endpoint listening", "listen", addr)
			return
		}
	}
}
