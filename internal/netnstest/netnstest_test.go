package netnstest

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
)

// TestServeHit: two namespaces joined by a veth (both families); the client's connections
// reach the server, which sees the client's address; a port nobody listens on is refused;
// Exec runs inside the namespace.
func TestServeHit(t *testing.T) {
	Require(t, "network namespace tests")
	a, b := New(t), New(t)
	Veth(t, a, "va", b, "vb")
	Up(t, a, "lo")
	Up(t, b, "lo")
	Addr(t, a, "va", "198.18.0.1/24")
	Addr(t, b, "vb", "198.18.0.2/24")
	Addr(t, a, "va", "fd00:198:18::1/64")
	Addr(t, b, "vb", "fd00:198:18::2/64")
	Addr(t, b, "lo", "198.19.0.1/32")
	Route(t, a, "198.19.0.1/32", "198.18.0.2")
	Sysctl(t, b, "net.ipv4.ip_forward=1")
	Serve(t, b, ":9000", "srv")
	Serve(t, b, "[fd00:198:18::2]:9001", "srv6")

	for _, tt := range []struct {
		at   string
		want string
	}{
		{"198.18.0.2:9000", "srv 198.18.0.1"},
		{"198.19.0.1:9000", "srv 198.18.0.1"}, // through the route
		{"[fd00:198:18::2]:9001", "srv6 fd00:198:18::1"},
	} {
		if got := Hit(t, a, netip.MustParseAddrPort(tt.at), 3); got[tt.want] != 3 || len(got) != 1 {
			t.Errorf("Hit %s = %v, want %q x3", tt.at, got, tt.want)
		}
	}
	if got, err := Dial(a, netip.MustParseAddrPort("198.18.0.2:9999"), 1); !errors.Is(err, syscall.ECONNREFUSED) || len(got) != 0 {
		t.Errorf("Dial to a closed port = %v, %v; want connection refused", got, err)
	}
	out, err := Exec(b, "", "ip", "-o", "addr", "show", "dev", "vb")
	if err != nil || !strings.Contains(out, "198.18.0.2/24") {
		t.Errorf("Exec in %s: %q, %v", b, out, err)
	}
	if out, err := Exec(b, "x\n", "cat"); err != nil || out != "x\n" {
		t.Errorf("Exec with stdin: %q, %v", out, err)
	}
}
