package main

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// listenNotify binds a unixgram socket in a temporary directory and points NOTIFY_SOCKET at it,
// as systemd does for a Type=notify service.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// readDatagrams reads n datagrams, each as one string.
func readDatagrams(t *testing.T, conn *net.UnixConn, n int) []string {
	t.Helper()
	var got []string
	buf := make([]byte, 4096)
	for range n {
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d of %d: %v (got so far: %q)", len(got)+1, n, err, got)
		}
		got = append(got, string(buf[:k]))
	}
	return got
}

func TestNotifierSequence(t *testing.T) {
	conn := listenNotify(t)
	var logs bytes.Buffer
	n := newNotifier(slog.New(slog.NewTextHandler(&logs, nil)))

	n.Ready()
	var ts unix.Timespec // the test's own CLOCK_MONOTONIC reading, not through monotonicUsec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	before := ts.Sec*1_000_000 + ts.Nsec/1_000
	n.Reloading()
	n.Ready()
	n.Status("applied plan: 2 ops")
	n.Stopping()

	got := readDatagrams(t, conn, 5)

	// The reload datagram carries a timestamp; check it, then compare the rest exactly.
	fields := strings.Split(got[1], "\n")
	if len(fields) != 2 || fields[0] != "RELOADING=1" || !strings.HasPrefix(fields[1], "MONOTONIC_USEC=") {
		t.Fatalf("reload datagram = %q, want RELOADING=1 and MONOTONIC_USEC=… in one datagram", got[1])
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(fields[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC: %v", err)
	}
	// CLOCK_MONOTONIC, not wall time: within a second of the test's own reading.
	if d := usec - before; d < 0 || d > 1_000_000 {
		t.Errorf("MONOTONIC_USEC=%d is %d µs from the test's CLOCK_MONOTONIC %d", usec, d, before)
	}
	got[1] = "RELOADING=1\nMONOTONIC_USEC=<checked>"

	want := []string{
		"READY=1\nSTATUS=running",
		"RELOADING=1\nMONOTONIC_USEC=<checked>",
		"READY=1\nSTATUS=running",
		"STATUS=applied plan: 2 ops",
		"STOPPING=1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("datagrams (-want +got):\n%s", diff)
	}
	if logs.Len() != 0 {
		t.Errorf("a successful notify logged: %s", logs.String())
	}
}

// TestNotifierWithoutSocket: outside systemd (NOTIFY_SOCKET unset) every call is a silent no-op.
func TestNotifierWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "") // restores the caller's value afterwards
	os.Unsetenv("NOTIFY_SOCKET")
	var logs bytes.Buffer
	n := newNotifier(slog.New(slog.NewTextHandler(&logs, nil)))
	n.Ready()
	n.Reloading()
	n.Ready()
	n.Status("x")
	n.Stopping()
	if logs.Len() != 0 {
		t.Errorf("notifier logged without NOTIFY_SOCKET: %s", logs.String())
	}
}

// TestNotifierFailureWarnsOnce: a socket nobody listens on fails every send; the notifier keeps
// going and logs one warning.
func TestNotifierFailureWarnsOnce(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	var logs bytes.Buffer
	n := newNotifier(slog.New(slog.NewTextHandler(&logs, nil)))
	n.Ready()
	n.Reloading()
	n.Stopping()
	if c := strings.Count(logs.String(), "level=WARN"); c != 1 {
		t.Errorf("%d warnings, want 1:\n%s", c, logs.String())
	}
	if !strings.Contains(logs.String(), "absent.sock") {
		t.Errorf("the warning does not name the socket:\n%s", logs.String())
	}
}

// TestMonotonicUsecIsMonotonicClock: the value is CLOCK_MONOTONIC (seconds since boot), not the
// Unix epoch, so systemd can compare it with its own monotonic timestamps.
func TestMonotonicUsecIsMonotonicClock(t *testing.T) {
	raw, err := os.ReadFile("/proc/uptime") // CLOCK_BOOTTIME, ≥ CLOCK_MONOTONIC
	if err != nil {
		t.Skip("no /proc/uptime")
	}
	up, err := strconv.ParseFloat(strings.Fields(string(raw))[0], 64)
	if err != nil {
		t.Fatalf("/proc/uptime %q: %v", raw, err)
	}
	if got := float64(monotonicUsec()) / 1e6; got <= 0 || got > up+1 {
		t.Errorf("monotonicUsec = %.3f s, uptime %.3f s: not CLOCK_MONOTONIC", got, up)
	}
}
