package daemon

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ravel-lb/ravel/netops"
)

// inNewNetns runs fn on the test's goroutine, its OS thread inside a fresh network namespace
// with lo up. Sockets made and processes started on this thread live there; other goroutines
// stay on the host, so fn must do its socket work itself.
func inNewNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("current network namespace: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New() // also enters it, on this thread only
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	defer ns.Close()
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // never hand a thread in the wrong namespace back to the runtime
		}
	}()
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	fn()
}

// startSquatter runs a TCP listener on 127.0.0.1:port as uid/gid 65534 (nobody), from this
// thread (so in its namespace), and returns once it listens.
func startSquatter(t *testing.T, port string) *exec.Cmd {
	t.Helper()
	for _, bin := range []string{"/usr/bin/setpriv", "/usr/bin/python3"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("the squatter needs %s: %v", bin, err)
		}
	}
	const listener = `import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
sys.stdin.read()`
	cmd := exec.Command("/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"/usr/bin/python3", "-c", listener, port)
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("the squatter did not start: %q, %v", line, err)
	}
	return cmd
}

// TestCoordinatorSquatHost: in a throwaway namespace, an unprivileged process listening on the
// coordinator port is rejected by the realserver's probe (read from the real /proc) and named
// in the director's bind error; once it is gone, the root director binds and is accepted.
func TestCoordinatorSquatHost(t *testing.T) {
	inNewNetns(t, func() {
		const port = 44444
		var logs syncBuffer
		w := &Watcher{Addr: addr(port), Interval: time.Second, Log: slog.New(slog.NewTextHandler(&logs, nil)),
			Sockets: netops.ProcSockets{}}
		squatter := startSquatter(t, "44444")

		if w.probe(context.Background()) {
			t.Error("the probe took an unprivileged listener for the director")
		}
		for _, want := range []string{"uid 65534", "(python3)"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the squatter's log does not say %q:\n%s", want, logs.String())
			}
		}
		c, err := ListenCoordinator("127.0.0.1", []int{port}, netops.ProcSockets{})
		if err == nil {
			c.Close()
			t.Fatal("ListenCoordinator succeeded on a squatted port")
		}
		for _, want := range []string{"uid 65534", "(python3)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("bind error %q does not say %q", err, want)
			}
		}

		squatter.Process.Kill()
		squatter.Wait()
		c, err = ListenCoordinator("127.0.0.1", []int{port}, netops.ProcSockets{})
		if err != nil {
			t.Fatalf("ListenCoordinator after the squatter left: %v", err)
		}
		defer c.Close()
		if !w.probe(context.Background()) {
			t.Error("the probe did not take root's listener for the director")
		}
	})
}
