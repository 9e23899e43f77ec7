package daemon

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// freePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func dialable(port int) bool {
	c, err := net.DialTimeout("tcp", addr(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestCoordinatorListensOnEveryPort: every port answers while the coordinator runs, none after
// Close.
func TestCoordinatorListensOnEveryPort(t *testing.T) {
	ports := freePorts(t, 3)
	c, err := ListenCoordinator("127.0.0.1", ports, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		for range 3 { // connections are accepted and closed, again and again
			if !dialable(p) {
				t.Errorf("port %d does not answer", p)
			}
		}
	}
	must(t, c.Close())
	for _, p := range ports {
		if dialable(p) {
			t.Errorf("port %d still answers after Close", p)
		}
	}
}

// TestCoordinatorRefusesIfAnyPortTaken: if one port cannot be bound, ListenCoordinator fails
// naming it, and the ports it had bound are released (a director realservers cannot see must
// not half-run).
func TestCoordinatorRefusesIfAnyPortTaken(t *testing.T) {
	for taken := range 3 {
		t.Run(fmt.Sprintf("port %d of 3 taken", taken+1), func(t *testing.T) {
			ports := freePorts(t, 3)
			other, err := net.Listen("tcp", addr(ports[taken]))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()

			c, err := ListenCoordinator("127.0.0.1", ports, nil)
			if err == nil {
				c.Close()
				t.Fatal("ListenCoordinator succeeded with a port taken")
			}
			if want := fmt.Sprintf("coordinator port %d", ports[taken]); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
			for i, p := range ports {
				if i == taken {
					continue
				}
				ln, err := net.Listen("tcp", addr(p))
				if err != nil {
					t.Errorf("port %d still held after the failure: %v", p, err)
					continue
				}
				ln.Close()
			}
		})
	}
}

// countingLoop is a RoleLoop that runs until cancelled and counts starts and cleanups.
type countingLoop struct {
	mu       sync.Mutex // guards the counters
	runs     int
	cleanups int
}

func (l *countingLoop) Run(ctx context.Context) error {
	l.mu.Lock()
	l.runs++
	l.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (l *countingLoop) Cleanup(context.Context) error {
	l.mu.Lock()
	l.cleanups++
	l.mu.Unlock()
	return nil
}

func (l *countingLoop) counts() (runs, cleanups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runs, l.cleanups
}

// TestWatcherFailover runs a real coordinator and a watcher over TCP on 127.0.0.1: the role
// stays off while the coordinator answers, starts once it has been gone for FailoverTimeout, and
// stops (cleaned up) when it answers again.
func TestWatcherFailover(t *testing.T) {
	const interval, failover = 50 * time.Millisecond, 200 * time.Millisecond
	ports := freePorts(t, 2)
	coord, err := ListenCoordinator("127.0.0.1", ports, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { coord.Close() }()

	loop := &countingLoop{}
	role := NewRoleController(loop)
	m := NewMetrics(prometheus.NewRegistry())
	w := &Watcher{Addr: addr(ports[0]), Interval: interval, FailoverTimeout: failover, Role: role, Log: discard, Metrics: m}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	// The director answers: the role stays off for many failover timeouts.
	for end := time.Now().Add(4 * failover); time.Now().Before(end); time.Sleep(interval / 2) {
		if role.Running() {
			t.Fatal("the role started while the director answers")
		}
	}

	// The director goes away.
	must(t, coord.Close())
	gone := time.Now()
	waitFor(t, "the role to start", role.Running)
	took := time.Since(gone)
	// The last successful probe was at most one interval before the close, and the role starts
	// at the first probe after FailoverTimeout: within FailoverTimeout + 2 intervals.
	if took > failover+2*interval {
		t.Errorf("the role started %s after the director left, want within %s", took, failover+2*interval)
	}
	if took < failover-interval {
		t.Errorf("the role started %s after the director left, before FailoverTimeout %s", took, failover)
	}
	// The watcher sets the metrics just after Start returns.
	waitFor(t, "ravel_realserver_role_active 1", func() bool { return value(t, m.RoleActive) == 1 })
	waitFor(t, "ravel_realserver_failovers_total 1", func() bool { return value(t, m.Failovers) == 1 })

	// The director comes back on the same port.
	coord, err = ListenCoordinator("127.0.0.1", ports, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the role to stop", func() bool { return !role.Running() })
	if runs, cleanups := loop.counts(); runs != 1 || cleanups != 1 {
		t.Errorf("runs=%d cleanups=%d after the director came back, want 1 and 1", runs, cleanups)
	}
	waitFor(t, "ravel_realserver_role_active 0", func() bool { return value(t, m.RoleActive) == 0 })
	// It stays off while the director answers.
	time.Sleep(2 * failover)
	if role.Running() {
		t.Error("the role started again while the director answers")
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watcher.Run = %v, want nil", err)
	}
	if runs, cleanups := loop.counts(); runs != 1 || cleanups != 1 {
		t.Errorf("runs=%d cleanups=%d at the end, want 1 and 1", runs, cleanups)
	}
	if got := value(t, m.Failovers); got != 1 {
		t.Errorf("ravel_realserver_failovers_total = %v, want 1", got)
	}
}

// TestWatcherNoDirector: with no director at all the role starts after FailoverTimeout (never
// at once: at start the director is presumed present), and a cancelled watcher stops it and
// cleans up.
func TestWatcherNoDirector(t *testing.T) {
	const interval, failover = 20 * time.Millisecond, 300 * time.Millisecond
	loop := &countingLoop{}
	role := NewRoleController(loop)
	w := &Watcher{Addr: addr(freePorts(t, 1)[0]), Interval: interval, FailoverTimeout: failover, Role: role, Log: discard, Metrics: NewMetrics(nil)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- w.Run(ctx) }()
	waitFor(t, "the role to start", role.Running)
	if took := time.Since(start); took < failover {
		t.Errorf("the role started %s after the watcher, before FailoverTimeout %s", took, failover)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watcher.Run = %v, want nil", err)
	}
	if role.Running() {
		t.Error("the role is still running after the watcher stopped")
	}
	if runs, cleanups := loop.counts(); runs != 1 || cleanups != 1 {
		t.Errorf("runs=%d cleanups=%d, want 1 and 1", runs, cleanups)
	}
}
