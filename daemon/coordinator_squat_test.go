package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/netops"
)

// squatSockets is a FakeSockets where the coordinator port ap is held by the given uid.
func squatSockets(ap string, uid uint32) *netops.FakeSockets {
	return &netops.FakeSockets{
		Listening: []netops.Listener{{Addr: netip.MustParseAddrPort(ap), UID: uid, Inode: 4242}},
		Holders:   map[uint64]netops.Holder{4242: {PID: 777, Comm: "squatter"}},
	}
}

// answering listens on a free port of 127.0.0.1 until the test ends and returns the port.
func answering(t *testing.T) int {
	t.Helper()
	port := freePorts(t, 1)[0]
	c, err := ListenCoordinator("127.0.0.1", []int{port}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return port
}

// TestWatcherRejectsSquatter: a listener on the coordinator port that root does not own is no
// director. The role starts after FailoverTimeout as if nothing listened, and the squatter is
// logged once (with its uid and process), not on every probe.
func TestWatcherRejectsSquatter(t *testing.T) {
	const interval, failover = 10 * time.Millisecond, 50 * time.Millisecond
	port := answering(t) // something answers
	var logs syncBuffer
	role := NewRoleController(&countingLoop{})
	w := &Watcher{Addr: addr(port), Interval: interval, FailoverTimeout: failover, Role: role,
		Log: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: NewMetrics(nil),
		Sockets: squatSockets(addr(port), 65534)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	waitFor(t, "the role to start beside a squatter", role.Running)
	time.Sleep(5 * interval) // more probes: none may log again
	cancel()
	<-done
	out := logs.String()
	if n := strings.Count(out, "not owned by root"); n != 1 {
		t.Errorf("the squatter was logged %d times, want once:\n%s", n, out)
	}
	for _, want := range []string{"uid 65534, pid 777 (squatter)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
}

// TestWatcherAcceptsRoot: a root-owned listener is the director: the role stays off.
func TestWatcherAcceptsRoot(t *testing.T) {
	port := answering(t)
	w := &Watcher{Addr: addr(port), Interval: time.Second, Log: discard, Sockets: squatSockets(addr(port), 0)}
	if !w.probe(context.Background()) {
		t.Error("a root-owned coordinator listener was not taken for the director")
	}
	w.Sockets = &netops.FakeSockets{} // it answers, but no listener is found: not trusted
	if w.probe(context.Background()) {
		t.Error("a listener missing from the socket table was taken for the director")
	}
}

// TestCoordinatorBindErrorNamesHolder: a director that cannot bind names who holds the port.
func TestCoordinatorBindErrorNamesHolder(t *testing.T) {
	port := answering(t)
	c, err := ListenCoordinator("127.0.0.1", []int{port}, squatSockets("0.0.0.0:"+strings.TrimPrefix(addr(port), "127.0.0.1:"), 65534))
	if err == nil {
		c.Close()
		t.Fatal("ListenCoordinator succeeded on a taken port")
	}
	if want := "held by uid 65534, pid 777 (squatter)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
