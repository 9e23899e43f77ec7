package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
)

// coordinatorHost is where a realserver looks for the director's coordinator port: by default
// the director process on this same node (a director node that also serves as realserver takes
// the realserver role only while its director is gone).
var coordinatorHost = "127.0.0.1"

func runRealserver(ctx context.Context, cfg *configT, node nodeT, reg *prometheus.Registry, log *slog.Logger) error {
	links, err := netops.NewLinks()
	if err != nil {
		return &exitError{exitInvalid, fmt.Errorf("opening netlink: %w", err)}
	}
	defer links.Close()
	tables, err := iptables.New(cfg.IPTables.Chain)
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	m := daemon.NewMetrics(reg)
	var latest *daemon.Latest
	snaps, err := startKube(ctx, cfg, reg, log)
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	if snaps != nil {
		latest = daemon.NewLatest()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case s, ok := <-snaps:
					if !ok {
						return
					}
					latest.Set(s)
				}
			}
		}()
	}
	rs := daemon.NewRealserver(cfg, node, links, netops.NewSysctl(""), tables, latest, log, m)
	w := &daemon.Watcher{
		Addr:            net.JoinHostPort(coordinatorHost, strconv.Itoa(cfg.Coordinator.Ports[0])),
		Interval:        time.Second,
		FailoverTimeout: cfg.Coordinator.FailoverTimeout.D(),
		Role:            daemon.NewRoleController(rs),
		Log:             log,
		Metrics:         m,
	}
	log.Info("realserver waiting for the director to be gone before taking over", "coordinator", w.Addr, "failover_timeout", w.FailoverTimeout)
	return w.Run(ctx)
}
