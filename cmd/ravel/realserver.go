package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/ravel-lb/ravel/daemon"
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

func runRealserver(ctx context.Context, env *runEnv) error {
	cfg, log := env.cfg, env.log
	links, closeLinks, err := openLinks()
	if err != nil {
		return &exitError{exitInvalid, fmt.Errorf("opening netlink: %w", err)}
	}
	defer closeLinks()
	tables, err := openTables(cfg.IPTables.Chain)
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
	rs := daemon.NewRealserver(cfg, env.node, links, newSysctl(), tables, latest, log, env.m)
	rs.SetStatus(env.status)
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
	}
	log.Info("realserver waiting for the director to be gone before taking over", "coordinator", w.Addr, "failover_timeout", w.FailoverTimeout)
	return w.Run(ctx)
}
