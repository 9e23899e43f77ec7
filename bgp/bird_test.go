package bgp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The bird2 tests (issue 12): Debian's bird2 is the router, in a network namespace of its
// own; the speaker runs in another, joined by a veth pair. The speaker's side is this test
// binary run again under `ip netns exec` (TestBirdHelper): GoBGP opens its sockets from its
// own goroutines, on any thread, so the whole process must be in the namespace.

const birdHelperEnv = "RAVEL_BIRD_HELPER_SOCK"

func needBird(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (network namespaces)")
	}
	for _, bin := range []string{"bird", "birdc", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipped: %s is not installed (make deps installs bird2)", bin)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// birdBed is a speaker namespace (10.99.0.1, fd99::1) and a router namespace (10.99.0.2, fd99::2) on a veth
// pair, bird running in the router's with conf (bird.conf's text); it returns the namespaces,
// bird's control socket and a directory for files.
type birdBed struct {
	sns, rns, sock, dir string
}

func newBirdBed(t *testing.T, conf string) birdBed {
	needBird(t)
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	sns, rns := "bgps-"+id, "bgpr-"+id
	for _, ns := range []string{sns, rns} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "vs"+id, "netns", sns, "type", "veth", "peer", "name", "vr"+id, "netns", rns)
	run(t, "ip", "-n", sns, "addr", "add", "10.99.0.1/30", "dev", "vs"+id)
	run(t, "ip", "-n", rns, "addr", "add", "10.99.0.2/30", "dev", "vr"+id)
	// and fd99::1/64, fd99::2/64 for the IPv6 sessions (nodad: usable at once)
	run(t, "ip", "-n", sns, "addr", "add", "fd99::1/64", "dev", "vs"+id, "nodad")
	run(t, "ip", "-n", rns, "addr", "add", "fd99::2/64", "dev", "vr"+id, "nodad")
	run(t, "ip", "-n", sns, "link", "set", "vs"+id, "up")
	run(t, "ip", "-n", rns, "link", "set", "vr"+id, "up")

	dir := t.TempDir()
	confFile, sock := filepath.Join(dir, "bird.conf"), filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	bird := exec.Command("ip", "netns", "exec", rns, "bird", "-f", "-c", confFile, "-s", sock)
	birdLog, _ := os.Create(filepath.Join(dir, "bird.log"))
	bird.Stdout, bird.Stderr = birdLog, birdLog
	if err := bird.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bird.Process.Kill(); _ = bird.Wait() })
	return birdBed{sns: sns, rns: rns, sock: sock, dir: dir}
}

// birdLog is bird's output so far, for a failure message.
func (b birdBed) birdLog() string {
	blog, _ := os.ReadFile(filepath.Join(b.dir, "bird.log"))
	return string(blog)
}

const birdBase = `router id 10.99.0.2;
protocol device {}
protocol bgp ravel {
	local 10.99.0.2 as 65000;
	neighbor 10.99.0.1 as 65010;
	error wait time 1, 5;   # after the wrong-ASN attempt: retry in a second, not the default 60 s
	connect delay time 1;
	ipv4 { import all; export none; };
`

func TestBird(t *testing.T) {
	bed := newBirdBed(t, birdBase+"}\n")
	helper := exec.Command("ip", "netns", "exec", bed.sns, os.Args[0], "-test.run", "^TestBirdHelper$", "-test.v", "-test.count=1")
	helper.Env = append(os.Environ(), birdHelperEnv+"="+bed.sock)
	out, err := helper.CombinedOutput()
	t.Logf("speaker side:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestBirdHelper") {
		t.Fatalf("the speaker side failed (%v); bird's log:\n%s", err, bed.birdLog())
	}
}

// birdRoute reports whether bird has a route to prefix.
func birdRoute(t *testing.T, sock, prefix string) bool {
	out, err := exec.Command("birdc", "-s", sock, "show", "route", prefix).CombinedOutput()
	if err != nil && strings.Contains(string(out), "Network not found") {
		return false
	}
	if err != nil {
		t.Logf("birdc: %v: %s", err, out)
		return false
	}
	return strings.Contains(string(out), prefix)
}

// TestBirdHelper is the speaker's side of TestBird, in the speaker's namespace.
func TestBirdHelper(t *testing.T) {
	sock := os.Getenv(birdHelperEnv)
	if sock == "" {
		t.Skip("helper of TestBird")
	}
	ctx := context.Background()
	sp, err := Start(ctx, Config{ASN: 65010, RouterID: netip.MustParseAddr("10.99.0.1"), ListenPort: -1}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop(ctx)
	peer := Peer{Address: netip.MustParseAddr("10.99.0.2"), ASN: 65000, LocalAddress: netip.MustParseAddr("10.99.0.1"),
		HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second}
	if err := sp.SetPeers(ctx, []Peer{peer}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Set(nil); err != nil { // the first Set opens the sessions: nothing served yet
		t.Fatal(err)
	}
	established := func() bool {
		ps, err := sp.Peers(ctx)
		return err == nil && len(ps) == 1 && ps[0].State == "established"
	}
	eventually(t, "the session with bird", established)

	start := time.Now()
	if err := sp.Set(vips("10.0.0.100")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "10.0.0.100/32 in birdc show route", func() bool { return birdRoute(t, sock, "10.0.0.100/32") })
	t.Logf("FIGURE announce: %d ms from Set to the route in bird", time.Since(start).Milliseconds())

	start = time.Now()
	if err := sp.Set(nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "10.0.0.100/32 gone from bird", func() bool { return !birdRoute(t, sock, "10.0.0.100/32") })
	t.Logf("FIGURE withdraw: %d ms from Set to the route gone from bird", time.Since(start).Milliseconds())

	// A wrong ASN: bird refuses the session; the speaker says so and keeps running.
	bad := peer
	bad.ASN = 65999
	if err := sp.SetPeers(ctx, []Peer{bad}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	ps, err := sp.Peers(ctx)
	// GoBGP gives no disconnect reason for a session that never came up (bird's NOTIFICATION
	// "bad peer AS" is not kept): the state is what ravel can show.
	if err != nil || len(ps) != 1 || ps[0].State == "established" {
		t.Errorf("with the wrong peer ASN: peers %+v (%v), want one, not established", ps, err)
	}
	t.Logf("wrong ASN: state %s, reason %q", ps[0].State, ps[0].Reason)
	if err := sp.SetPeers(ctx, []Peer{peer}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session back with the right ASN", established)
}

// birdDualStack is bird with an IPv4 session (ipv4 channel) and an IPv6 session (ipv6
// channel) with the speaker.
const birdDualStack = birdBase + `}
protocol bgp ravel6 {
	local fd99::2 as 65000;
	neighbor fd99::1 as 65010;
	error wait time 1, 5;
	connect delay time 1;
	ipv6 { import all; export none; };
}
`

// TestBirdIPv6: the speaker announces an IPv6 VIP as a /128 on an IPv6 session and an IPv4
// VIP as a /32 on the IPv4 one, each with the session's local address as next hop, and
// withdraws the IPv6 one alone.
func TestBirdIPv6(t *testing.T) {
	bed := newBirdBed(t, birdDualStack)
	helper := exec.Command("ip", "netns", "exec", bed.sns, os.Args[0], "-test.run", "^TestBirdIPv6Helper$", "-test.v", "-test.count=1")
	helper.Env = append(os.Environ(), birdHelperEnv+"="+bed.sock)
	out, err := helper.CombinedOutput()
	t.Logf("speaker side:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestBirdIPv6Helper") {
		t.Fatalf("the speaker side failed (%v); bird's log:\n%s", err, bed.birdLog())
	}
}

// TestBirdIPv6Helper is the speaker's side of TestBirdIPv6.
func TestBirdIPv6Helper(t *testing.T) {
	sock := os.Getenv(birdHelperEnv)
	if sock == "" {
		t.Skip("helper of TestBirdIPv6")
	}
	ctx := context.Background()
	sp, err := Start(ctx, Config{ASN: 65010, RouterID: netip.MustParseAddr("10.99.0.1"), ListenPort: -1}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop(ctx)
	peer := func(addr, local string) Peer {
		return Peer{Address: netip.MustParseAddr(addr), ASN: 65000, LocalAddress: netip.MustParseAddr(local),
			HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second}
	}
	if err := sp.SetPeers(ctx, []Peer{peer("10.99.0.2", "10.99.0.1"), peer("fd99::2", "fd99::1")}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Set(nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both sessions with bird", func() bool {
		ps, err := sp.Peers(ctx)
		return err == nil && len(ps) == 2 && ps[0].State == "established" && ps[1].State == "established"
	})
	if err := sp.Set(vips("10.0.0.100", "fd00:99::100")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fd00:99::100/128 in birdc show route", func() bool { return birdRoute(t, sock, "fd00:99::100/128") })
	eventually(t, "10.0.0.100/32 in birdc show route", func() bool { return birdRoute(t, sock, "10.0.0.100/32") })
	out, _ := exec.Command("birdc", "-s", sock, "show", "route", "all", "fd00:99::100/128").CombinedOutput()
	t.Logf("bird:\n%s", out)
	if !strings.Contains(string(out), "fd99::1") || !strings.Contains(string(out), "ravel6") {
		t.Errorf("the IPv6 route is not from the IPv6 session with next hop fd99::1:\n%s", out)
	}
	if err := sp.Set(vips("10.0.0.100")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fd00:99::100/128 gone from bird", func() bool { return !birdRoute(t, sock, "fd00:99::100/128") })
	if !birdRoute(t, sock, "10.0.0.100/32") {
		t.Error("the IPv4 route went with the IPv6 one")
	}
}
