package netnstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/netops"
)

// Require skips t unless it runs as root with ip(8) installed; what names the tests in the
// message ("real-kernel iptables tests").
func Require(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipped: %s need root (network namespaces); run go test as root", what)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("skipped: %s need ip(8) from iproute2", what)
	}
}

// RequireTool skips t when the command name is not installed, or fails it under make test
// (RAVEL_REQUIRE_KAPI=1, which also asks for kube-apiserver and promtool): there `make deps`
// installs the Debian package pkg, and a missing tool would silently drop coverage.
func RequireTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	if os.Getenv("RAVEL_REQUIRE_KAPI") != "" {
		t.Fatalf("%s is missing: install the Debian package %s (make deps does)", name, pkg)
	}
	t.Skipf("skipped: needs %s (Debian package %s; make deps installs it)", name, pkg)
}

// New creates a throwaway network namespace, deleted when t ends, and returns its name.
func New(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "ravel-t-" + hex.EncodeToString(b)
	MustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// Path is the path of the namespace named name, as `ip netns add` makes it.
func Path(name string) string { return "/run/netns/" + name }

// MustRun runs a command (in the test's own namespace) and returns its combined output; a
// failure fails t.
func MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Exec runs a command in the namespace ns, as `ip netns exec ns ...` would (with setns), with
// stdin as its input, and returns its output; the error has its stderr.
func Exec(ns string, stdin string, name string, args ...string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &stderr
	err := netops.InNetns(Path(ns), cmd.Run)
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}

// IP runs `ip -n ns args...`.
func IP(t testing.TB, ns string, args ...string) {
	t.Helper()
	MustRun(t, "ip", append([]string{"-n", ns}, args...)...)
}

// Veth joins namespace a (device aDev) and namespace b (device bDev) with a veth pair and sets
// both ends up.
func Veth(t testing.TB, a, aDev, b, bDev string) {
	t.Helper()
	MustRun(t, "ip", "link", "add", aDev, "netns", a, "type", "veth", "peer", "name", bDev, "netns", b)
	IP(t, a, "link", "set", aDev, "up")
	IP(t, b, "link", "set", bDev, "up")
}

// Up sets devices of ns up (lo is down in a new namespace).
func Up(t testing.TB, ns string, devs ...string) {
	t.Helper()
	for _, dev := range devs {
		IP(t, ns, "link", "set", dev, "up")
	}
}

// Addr adds the address prefix ("198.18.0.1/24", "fd00::1/64") to dev in ns. IPv6 addresses
// are added with nodad: duplicate address detection would keep them tentative (not usable as
// a source) for about a second after they are added.
func Addr(t testing.TB, ns, dev, prefix string) {
	t.Helper()
	p := netip.MustParsePrefix(prefix)
	if p.Addr().Is4() {
		IP(t, ns, "addr", "add", prefix, "dev", dev)
		return
	}
	IP(t, ns, "-6", "addr", "add", prefix, "dev", dev, "nodad")
}

// Route adds a route in ns to dst (a prefix, an address, or "default") via the gateway via;
// the gateway's family is the route's.
func Route(t testing.TB, ns, dst, via string) {
	t.Helper()
	fam := "-4"
	if netip.MustParseAddr(via).Is6() {
		fam = "-6"
	}
	IP(t, ns, fam, "route", "add", dst, "via", via)
}

// Sysctl sets a kernel parameter in ns ("net.ipv4.ip_forward=1").
func Sysctl(t testing.TB, ns, keyValue string) {
	t.Helper()
	MustRun(t, "ip", "netns", "exec", ns, "sysctl", "-qw", keyValue)
}
