package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the signal goroutine's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSignalContext sends signals to the test process itself: SIGCONT and SIGHUP are logged and
// never end the context (SIGHUP's default action would kill the daemon); SIGTERM ends it.
func TestSignalContext(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var hups atomic.Int32
	ctx, stop := signalContext(context.Background(), log, func() { hups.Add(1) })
	defer stop()

	for _, sig := range []struct {
		s   syscall.Signal
		log string
	}{
		{syscall.SIGCONT, "SIGCONT received and ignored"},
		{syscall.SIGHUP, "SIGHUP received"},
		{syscall.SIGCONT, "SIGCONT received and ignored"},
	} {
		before := strings.Count(logs.String(), sig.log)
		if err := syscall.Kill(os.Getpid(), sig.s); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, sig.s.String()+" to be logged", func() bool { return strings.Count(logs.String(), sig.log) > before })
		if err := ctx.Err(); err != nil {
			t.Fatalf("%s ended the context: %v", sig.s, err)
		}
	}
	if n := hups.Load(); n != 1 {
		t.Errorf("SIGHUP called the reload hook %d times, want 1", n)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not end the context")
	}
	waitUntil(t, "SIGTERM to be logged", func() bool {
		return strings.Contains(logs.String(), "signal received, stopping") && strings.Contains(logs.String(), "signal=terminated")
	})
}

// TestRunIgnoresSIGCONT builds the ravel binary and runs `ravel run` as a realserver whose
// director (a listener of this test on the coordinator port) answers, so the realserver role
// never starts and the host's network is never touched (failoverTimeout is an hour besides).
// SIGCONT and SIGHUP are logged as JSON and the process keeps running; SIGTERM ends it with
// status 0.
func TestRunIgnoresSIGCONT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	gobin := goTool(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "ravel")
	build := exec.Command(gobin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	director, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer director.Close()
	go func() {
		for {
			c, err := director.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := director.Addr().(*net.TCPAddr).Port
	cfg := filepath.Join(dir, "realserver.yaml")
	yaml := fmt.Sprintf(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: signal-test, role: realserver, interface: eth0, vipInterface: lo}
vipPool: [10.54.213.247]
services:
  - name: web
    vip: 10.54.213.247
    port: 80
    backends: [{address: 10.0.1.5}]
coordinator: {ports: [%d], failoverTimeout: 1h}
metrics: {listen: ""}
`, port)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "run", "--config", cfg, "--log-format", "json", "--coordinator-host", "127.0.0.1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error               // set before waitDone is closed
	waitDone := make(chan struct{}) // closed when the process has exited and been waited for
	lines := make(chan map[string]any, 64)
	var raw syncBuffer
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderr, &raw))
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
		waitErr = cmd.Wait()
		close(waitDone)
	}()
	defer func() {
		select {
		case <-waitDone:
		default:
			_ = cmd.Process.Kill()
			<-waitDone
		}
	}()

	// expect reads log records until one has msg starting with prefix.
	expect := func(prefix string) map[string]any {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case m, ok := <-lines:
				if !ok {
					<-waitDone
					err, out := waitErr, raw.String()
					if strings.Contains(out, "iptables") || strings.Contains(out, "netlink") {
						t.Skipf("ravel run cannot start on this host (%v):\n%s", err, out)
					}
					t.Fatalf("ravel exited (%v) before logging %q:\n%s", err, prefix, out)
				}
				if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
					return m
				}
			case <-timeout:
				t.Fatalf("no log %q within 10s:\n%s", prefix, raw.String())
			}
		}
	}

	expect("realserver waiting for the director")
	for _, s := range []struct {
		sig syscall.Signal
		msg string
	}{
		{syscall.SIGCONT, "SIGCONT received and ignored"},
		{syscall.SIGHUP, "SIGHUP received"},
		{syscall.SIGCONT, "SIGCONT received and ignored"},
	} {
		if err := cmd.Process.Signal(s.sig); err != nil {
			t.Fatal(err)
		}
		if m := expect(s.msg); m["level"] == "ERROR" {
			t.Errorf("%s logged at level ERROR: %v", s.sig, m)
		}
	}
	select {
	case <-waitDone:
		t.Fatalf("ravel exited after SIGCONT/SIGHUP: %v\n%s", waitErr, raw.String())
	case <-time.After(200 * time.Millisecond):
	}
	if strings.Contains(raw.String(), "starting the realserver role") {
		t.Fatalf("the realserver role started although the director answers:\n%s", raw.String())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	m := expect("signal received, stopping")
	if m["signal"] != "terminated" {
		t.Errorf("stop logged signal %v, want terminated", m["signal"])
	}
	for range lines {
	}
	select {
	case <-waitDone:
		if waitErr != nil {
			t.Errorf("ravel exited with %v after SIGTERM, want status 0\n%s", waitErr, raw.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ravel did not exit within 10s of SIGTERM")
	}
}
