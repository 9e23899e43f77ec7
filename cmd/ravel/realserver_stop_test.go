package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netnsCmd runs a command in the named network namespace.
func netnsCmd(ns string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// TestRealserverSIGTERMCleansUp runs the real binary as a realserver with no director in a
// throwaway network namespace of this host's kernel: the role takes over, binds the VIP on lo
// and creates its chains; on SIGTERM it removes both before it exits — within the 5 s
// shutdown bound — and logs that it did. Foreign addresses and chains stay.
func TestRealserverSIGTERMCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	for _, tool := range []string{"ip", "iptables-save", "iptables", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("RAVEL_REQUIRE_KAPI") != "" {
				t.Fatalf("%s not found (make deps installs it)", tool)
			}
			t.Skipf("%s not found", tool)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ravel")
	if out, err := exec.Command(goTool(t), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ns := fmt.Sprintf("ravel-stop-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "rs0", "type", "veth", "peer", "name", "rs1"}, // node.interface
		{"ip", "link", "set", "rs0", "up"},
		{"ip", "addr", "add", "192.0.2.9/32", "dev", "lo"}, // foreign: must survive
		{"iptables", "-t", "nat", "-N", "KUBE-FOREIGN"},
		{"iptables", "-t", "nat", "-A", "KUBE-FOREIGN", "-j", "RETURN"},
	} {
		if out, err := netnsCmd(ns, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	cfg := filepath.Join(dir, "rs.yaml")
	// Nothing listens on the coordinator port in the namespace: the director is gone, and
	// the role starts after failoverTimeout.
	if err := os.WriteFile(cfg, []byte(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: rs-stop, role: realserver, interface: rs0, vipInterface: lo}
vipPool: [10.54.213.247]
services:
  - {name: web, vip: 10.54.213.247, port: 80, backends: [{address: 10.0.1.5}]}
coordinator: {ports: [44444], failoverTimeout: 100ms}
metrics: {listen: ""}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		addrs, _ := netnsCmd(ns, "ip", "-o", "addr", "show", "dev", "lo").CombinedOutput()
		nat, _ := netnsCmd(ns, "iptables-save", "-t", "nat").CombinedOutput()
		return string(addrs) + string(nat)
	}

	// With only the capabilities the systemd unit leaves it (its CapabilityBoundingSet, read
	// from the unit itself), as systemd would start it.
	caps := unitCapabilities(t)
	cmd := netnsCmd(ns, "setpriv", "--bounding-set=-all,"+caps, "--inh-caps=-all", "--",
		bin, "run", "--config", cfg, "--log-format", "json", "--watch-config=false")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	logged := make(chan string, 256)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderr, &log))
		for sc.Scan() {
			logged <- sc.Text()
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitLog := func(sub string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case l := <-logged:
				if strings.Contains(l, sub) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q logged within 20s:\n%s", sub, log.String())
			}
		}
	}
	waitLog("starting the realserver role")
	waitUntil(t, "the VIP and the chains", func() bool {
		s := state()
		return strings.Contains(s, "10.54.213.247/32") && strings.Contains(s, ":RAVEL")
	})

	// The daemon really runs without the other capabilities of root.
	if caps := procCaps(t, "ravel"); caps != unitCapMask(t) {
		t.Fatalf("ravel runs with CapBnd %s, want exactly the unit's %s", caps, unitCapMask(t))
	}

	// ip netns exec runs ravel as its child: signal ravel itself.
	pid, err := exec.Command("pgrep", "-P", fmt.Sprint(cmd.Process.Pid)).Output()
	target := cmd.Process.Pid
	if err == nil {
		if _, serr := fmt.Sscan(string(pid), &target); serr != nil {
			target = cmd.Process.Pid
		}
	}
	start := time.Now()
	if err := syscall.Kill(target, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("ravel exited with %v after SIGTERM, want 0\n%s", err, log.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("ravel did not exit within 15s of SIGTERM:\n%s", log.String())
	}
	took := time.Since(start)
	if !strings.Contains(log.String(), "realserver rules removed on shutdown") {
		t.Errorf("no clean-up logged:\n%s", log.String())
	}
	s := state()
	if strings.Contains(s, "10.54.213.247") || strings.Contains(s, ":RAVEL") {
		t.Errorf("rules left after SIGTERM (%s):\n%s", took, s)
	}
	if !strings.Contains(s, "192.0.2.9/32") || !strings.Contains(s, "-A KUBE-FOREIGN -j RETURN") {
		t.Errorf("a foreign address or chain was removed:\n%s", s)
	}
	t.Logf("SIGTERM to exit with rules removed: %s", took.Round(time.Millisecond))
}

// unitCapabilities returns the unit's CapabilityBoundingSet as setpriv's list ("+net_admin,...").
func unitCapabilities(t *testing.T) string {
	t.Helper()
	var out []string
	for _, c := range unitCapNames(t) {
		out = append(out, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	return strings.Join(out, ",")
}

func unitCapNames(t *testing.T) []string {
	t.Helper()
	unit, err := os.ReadFile("../../systemd/ravel.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, "CapabilityBoundingSet="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatal("the unit has no CapabilityBoundingSet=")
	return nil
}

// capBits are the capability numbers of linux/capability.h the unit may name.
var capBits = map[string]uint{"CAP_DAC_OVERRIDE": 1, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_MODULE": 16, "CAP_SYS_ADMIN": 21}

func unitCapMask(t *testing.T) string {
	t.Helper()
	var m uint64
	for _, c := range unitCapNames(t) {
		b, ok := capBits[c]
		if !ok {
			t.Fatalf("capability %s of the unit is not in this test's table", c)
		}
		m |= 1 << b
	}
	return fmt.Sprintf("%016x", m)
}

// procCaps returns CapBnd of the process named comm (the newest one).
func procCaps(t *testing.T, comm string) string {
	t.Helper()
	pid, err := exec.Command("pgrep", "-n", "-x", comm).Output()
	if err != nil {
		t.Fatalf("pgrep %s: %v", comm, err)
	}
	st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd in /proc status")
	return ""
}

// goTool is the go command that runs this test (go test puts its GOROOT/bin first on PATH).
func goTool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	return p
}
