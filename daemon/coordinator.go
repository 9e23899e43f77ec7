package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Coordinator is the director's side of failover: it listens on every coordinator port, and a
// realserver that can connect knows the director is alive. Connections are accepted and
// closed at once.
type Coordinator struct {
	lns []net.Listener
	wg  sync.WaitGroup
}

// ListenCoordinator binds every port on host (coordinator.listen, loopback by default). If any one
// cannot be bound it closes the others and fails: a director that realservers cannot see must
// not run, or they would take over beside it.
func ListenCoordinator(host string, ports []int) (*Coordinator, error) {
	c := &Coordinator{}
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("coordinator port %d: %w", p, err)
		}
		c.lns = append(c.lns, ln)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
	}
	return c, nil
}

// Close stops listening.
func (c *Coordinator) Close() error {
	var errs []error
	for _, ln := range c.lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	c.wg.Wait()
	return errors.Join(errs...)
}

// ShutdownTimeout bounds a realserver's clean-up when the daemon stops: its rules and VIPs
// are removed within it, and every error is reported.
const ShutdownTimeout = 5 * time.Second

// Watcher is the realserver's side: it probes the director's first coordinator port once per
// Interval. While the director answers, the realserver role stays off; once it has been gone
// for FailoverTimeout the role starts; when it answers again the role stops.
type Watcher struct {
	Addr            string // host:port of the director's first coordinator port
	Interval        time.Duration
	FailoverTimeout time.Duration
	Role            *RoleController
	Log             *slog.Logger
	Metrics         *Metrics
	Status          *Status // may be nil
}

// Run probes until ctx ends. At start the director is presumed present, so a realserver never
// takes over before the director had FailoverTimeout to answer; with no director at all, the
// role starts after FailoverTimeout. On return a started role is stopped and cleaned up.
func (w *Watcher) Run(ctx context.Context) error {
	lastSeen := time.Now()
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		alive := w.probe(ctx)
		if alive {
			lastSeen = time.Now()
			w.Metrics.DirectorPresent.Set(1)
		} else {
			w.Metrics.DirectorPresent.Set(0)
		}
		running := w.Role.Running()
		switch {
		case alive && running:
			w.Log.Info("director is back: stopping the realserver role", "coordinator", w.Addr)
			if err := w.Role.Stop(ctx); err != nil {
				w.Log.Error("stopping the realserver role", "err", err)
			}
			w.Metrics.RoleActive.Set(0)
		case !alive && !running && time.Since(lastSeen) >= w.FailoverTimeout:
			w.Log.Warn("director gone: starting the realserver role", "coordinator", w.Addr, "gone_for", time.Since(lastSeen).Round(time.Millisecond))
			if err := w.Role.Start(ctx); err != nil {
				w.Log.Error("starting the realserver role", "err", err)
			} else {
				w.Metrics.RoleActive.Set(1)
				w.Metrics.Failovers.Inc()
			}
		}
		if w.Status != nil {
			w.Status.SetCoordinator(alive, w.Role.Running())
		}
		select {
		case <-ctx.Done():
			if w.Role.Running() {
				start := time.Now()
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
				err := w.Role.Stop(sctx)
				cancel()
				if err != nil {
					w.Log.Error("stopping the realserver role on shutdown", "err", err, "took", time.Since(start).Round(time.Millisecond))
				} else {
					w.Log.Info("realserver rules removed on shutdown", "took", time.Since(start).Round(time.Millisecond))
				}
			}
			return nil
		case <-t.C:
		}
	}
}

func (w *Watcher) probe(ctx context.Context) bool {
	d := net.Dialer{Timeout: min(w.Interval, 500*time.Millisecond)}
	conn, err := d.DialContext(ctx, "tcp", w.Addr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
