package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ravel-lb/ravel/netops"
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
// not run, or they would take over beside it. The error names the process holding the port
// when who (may be nil) can find it.
func ListenCoordinator(host string, ports []int, who netops.Sockets) (*Coordinator, error) {
	c := &Coordinator{}
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("coordinator port %d: %w%s", p, err, heldBy(who, host, p))
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
	// Sockets, when set, tells who owns the listener that answers: only a root-owned one is
	// the director. Nil trusts any listener (a director on another machine).
	Sockets netops.Sockets
	// Health, when set, is the node view the role's health endpoint serves: before the role
	// stops (the director is back, or ravel stops), it answers "draining" for DrainDelay, so
	// that directors give this node weight 0 while its rules still forward.
	Health     *NodeHealth
	DrainDelay time.Duration

	squat string // the squatter last logged, "" when none; owned by Run's goroutine
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
			w.startDrain(ctx)
			if err := w.Role.Stop(ctx); err != nil {
				w.Log.Error("stopping the realserver role", "err", err)
			}
			w.endDrain() // the rules are gone: "draining" is over
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
				// No endDrain: the endpoint answers "draining" until it closes as ravel exits.
				w.startDrain(context.WithoutCancel(ctx))
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

// drain is a whole drain: startDrain, then endDrain.
func (w *Watcher) drain(ctx context.Context) {
	w.startDrain(ctx)
	w.endDrain()
}

// startDrain answers "draining" on the health endpoint for DrainDelay while the rules stay, so
// the directors' checks (every health.interval, fall in a row) take this node out before its
// rules go, and returns with the endpoint still answering "draining": the caller removes the
// rules, then calls endDrain. (A view that said "not draining" while the rules were being
// removed would count as a good answer, and rise of them would give the node its weight back.)
// On a shutdown ctx has no cancel: a stopping realserver always drains.
func (w *Watcher) startDrain(ctx context.Context) {
	if w.Health == nil || w.DrainDelay <= 0 {
		return
	}
	w.Health.SetDraining(true)
	if w.Status != nil {
		w.Status.SetDraining(true)
	}
	w.Metrics.RealserverDraining.Set(1)
	w.Log.Info("draining: health endpoint answers 503 draining; rules stay until the delay ends", "drain_delay", w.DrainDelay)
	t := time.NewTimer(w.DrainDelay)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	w.Log.Info("drain delay over: removing the realserver rules")
}

// endDrain stops answering "draining", once the rules are gone.
func (w *Watcher) endDrain() {
	if w.Health == nil || w.DrainDelay <= 0 {
		return
	}
	w.Health.SetDraining(false)
	if w.Status != nil {
		w.Status.SetDraining(false)
	}
	w.Metrics.RealserverDraining.Set(0)
}

func (w *Watcher) probe(ctx context.Context) bool {
	d := net.Dialer{Timeout: min(w.Interval, 500*time.Millisecond)}
	conn, err := d.DialContext(ctx, "tcp", w.Addr)
	if err != nil {
		// Nothing answers (or the connect timed out under load): says nothing about who held
		// the port, so the squatter last logged stays remembered and is not logged again.
		return false
	}
	conn.Close()
	if w.Sockets == nil {
		return true
	}
	squat, err := w.squatter()
	w.noteSquat(squat, err)
	return squat == "" && err == nil
}

// squatter describes the listeners on the coordinator address that root does not own ("" when
// there are none). Any uid can listen on a port above 1023, and a realserver that took such a
// process for its director would stand down for good.
func (w *Watcher) squatter() (string, error) {
	ap, err := netip.ParseAddrPort(w.Addr)
	if err != nil {
		return "", fmt.Errorf("the coordinator address %q is not ip:port: %w", w.Addr, err)
	}
	ls, err := w.Sockets.Listeners(ap)
	if err != nil {
		return "", fmt.Errorf("reading the socket table: %w", err)
	}
	if len(ls) == 0 {
		// It answered, yet nothing listens now: it left in between, or it is not in this
		// network namespace. Either way nothing here vouches for it.
		return "", errors.New("no listening socket found for the coordinator address")
	}
	var squats []string
	for _, l := range ls {
		if l.UID != 0 {
			squats = append(squats, describeListener(w.Sockets, l))
		}
	}
	return strings.Join(squats, "; "), nil
}

// noteSquat logs why a listener was not trusted, once per change of the reason.
func (w *Watcher) noteSquat(squat string, err error) {
	why := squat
	if err != nil {
		why = err.Error()
	}
	if why == w.squat {
		return
	}
	w.squat = why
	switch {
	case err != nil:
		w.Log.Warn("cannot tell who answers on the coordinator port: treating the director as gone", "coordinator", w.Addr, "err", err)
	case squat != "":
		w.Log.Warn("the coordinator port is held by a process not owned by root: treating the director as gone", "coordinator", w.Addr, "squatter", squat)
	}
}

// heldBy describes, for a bind error, who listens on host:port; "" when who is nil or finds
// nobody.
func heldBy(who netops.Sockets, host string, port int) string {
	a, err := netip.ParseAddr(host)
	if who == nil || err != nil {
		return ""
	}
	ls, err := who.Listeners(netip.AddrPortFrom(a, uint16(port)))
	if err != nil || len(ls) == 0 {
		return ""
	}
	held := make([]string, len(ls))
	for i, l := range ls {
		held[i] = describeListener(who, l)
	}
	return " (held by " + strings.Join(held, "; ") + ")"
}

// describeListener names a listening socket's owner, and its process when it can be found.
func describeListener(who netops.Sockets, l netops.Listener) string {
	s := fmt.Sprintf("uid %d", l.UID)
	if h, ok := who.Holder(l.Inode); ok {
		s += ", " + h.String()
	}
	return s + " on " + l.Addr.String()
}
