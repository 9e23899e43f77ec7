package bgp

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Graceful restart and BFD against bird2 (issue 12). The speaker runs as TestBirdSpeaker in a
// process of its own in the speaker namespace, so that it can end the way ravel does: the
// process gone (a graceful-restart stop never calls Stop; the kernel closes the sockets), or
// its traffic blackholed (a dead machine: no FIN, no NOTIFICATION).

const (
	speakerDirEnv  = "RAVEL_BIRD_SPEAKER_DIR"
	speakerOptsEnv = "RAVEL_BIRD_SPEAKER_OPTS" // comma-separated: gr, restarting, bfd, hold3
	speakerVIPsEnv = "RAVEL_BIRD_SPEAKER_VIPS"
)

// speaker starts TestBirdSpeaker with opts announcing vips and waits until its session is
// established; touching dir/exit makes it exit at once (no Stop), dir/stop makes it Stop.
func (b birdBed) speaker(t *testing.T, name, opts, vips string) *exec.Cmd {
	t.Helper()
	dir := filepath.Join(b.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", b.sns, os.Args[0], "-test.run", "^TestBirdSpeaker$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), speakerDirEnv+"="+dir, speakerOptsEnv+"="+opts, speakerVIPsEnv+"="+vips)
	out, _ := os.Create(filepath.Join(dir, "out"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			return cmd
		}
		if time.Now().After(end) {
			log, _ := os.ReadFile(filepath.Join(dir, "out"))
			t.Fatalf("speaker %s (%s) not established in 20 s:\n%s\nbird:\n%s", name, opts, log, b.birdLog())
		}
	}
}

func touch(t *testing.T, cmd *exec.Cmd, what string) {
	t.Helper()
	dir := strings.TrimPrefix(cmd.Env[len(cmd.Env)-3], speakerDirEnv+"=")
	if err := os.WriteFile(filepath.Join(dir, what), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBirdSpeaker is the speaker side of the graceful restart and BFD tests.
func TestBirdSpeaker(t *testing.T) {
	dir := os.Getenv(speakerDirEnv)
	if dir == "" {
		t.Skip("helper of TestBirdGracefulRestart and TestBirdBFD")
	}
	opts := map[string]bool{}
	for _, o := range strings.Split(os.Getenv(speakerOptsEnv), ",") {
		opts[o] = true
	}
	ctx := context.Background()
	sp, err := Start(ctx, Config{ASN: 65010, RouterID: netip.MustParseAddr("10.99.0.1"), ListenPort: -1, Restarting: opts["restarting"]}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	peer := Peer{Address: netip.MustParseAddr("10.99.0.2"), ASN: 65000, LocalAddress: netip.MustParseAddr("10.99.0.1"),
		HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second}
	if opts["hold3"] {
		peer.HoldTime, peer.Keepalive = 3*time.Second, time.Second
	}
	if opts["gr"] {
		peer.GracefulRestart = GracefulRestart{Enabled: true, RestartTime: 30 * time.Second}
	}
	if opts["bfd"] {
		peer.BFD = BFD{Enabled: true, MinInterval: 300 * time.Millisecond, Multiplier: 3}
	}
	peers := []Peer{peer}
	if opts["deadpeer"] {
		// A second router that never answers: a restarting speaker must not hold its updates
		// for it longer than the deferral bound (GoBGP's default would be 360 s).
		dead := peer
		dead.Address = netip.MustParseAddr("10.99.0.3")
		peers = append(peers, dead)
	}
	if err := sp.SetPeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	var set []string
	if v := os.Getenv(speakerVIPsEnv); v != "" {
		set = strings.Split(v, ",")
	}
	if err := sp.Set(vips(set...)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session with bird", func() bool {
		ps, err := sp.Peers(ctx)
		return err == nil && len(ps) >= 1 && ps[0].State == "established"
	})
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "exit")); err == nil {
			os.Exit(0) // as ravel's graceful-restart stop: no withdrawal, no NOTIFICATION
		}
		if _, err := os.Stat(filepath.Join(dir, "stop")); err == nil {
			if err := sp.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("told neither to exit nor to stop within 90 s")
}

func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the speaker did not exit")
	}
}

func TestBirdGracefulRestart(t *testing.T) {
	bed := newBirdBed(t, "log stderr all;\n"+birdBase+"\tgraceful restart on;\n\tdebug { states, events, packets };\n}\n")
	const a, b = "10.0.0.100/32", "10.0.0.101/32"

	// Without graceful restart the routes go with the process: what the rest of the test fixes.
	plain := bed.speaker(t, "plain", "", "10.0.0.100")
	eventually(t, a+" in bird", func() bool { return birdRoute(t, bed.sock, a) })
	touch(t, plain, "exit")
	waitExit(t, plain)
	start := time.Now()
	eventually(t, a+" gone with a speaker without graceful restart", func() bool { return !birdRoute(t, bed.sock, a) })
	t.Logf("FIGURE no graceful restart: route gone %d ms after the process exited", time.Since(start).Milliseconds())

	// With it: the first speaker leaves (as SIGTERM with gracefulRestart does); bird keeps both
	// routes; the next start announces only a, and b goes at its End-of-RIB. a is never gone.
	// The restarted speaker also has a peer that never answers: its updates wait for that
	// peer's End-of-RIB at most grDeferral seconds.
	first := bed.speaker(t, "first", "gr", "10.0.0.100,10.0.0.101")
	eventually(t, "both routes in bird", func() bool { return birdRoute(t, bed.sock, a) && birdRoute(t, bed.sock, b) })
	var missing atomic.Int32
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(50 * time.Millisecond):
				if !birdRoute(t, bed.sock, a) {
					missing.Add(1)
				}
			}
		}
	}()
	touch(t, first, "exit")
	waitExit(t, first)
	time.Sleep(3 * time.Second)
	if !birdRoute(t, bed.sock, a) || !birdRoute(t, bed.sock, b) {
		t.Errorf("3 s after a graceful-restart exit bird lost the routes (a %v, b %v)", birdRoute(t, bed.sock, a), birdRoute(t, bed.sock, b))
	}
	second := bed.speaker(t, "second", "gr,restarting,deadpeer", "10.0.0.100")
	start = time.Now()
	eventually(t, b+" dropped at the restarted speaker's End-of-RIB", func() bool { return !birdRoute(t, bed.sock, b) })
	t.Logf("FIGURE graceful restart: the stale route not announced again gone %d ms after the new session", time.Since(start).Milliseconds())
	time.Sleep(time.Second)
	close(stopPoll)
	<-polled
	if n := missing.Load(); n > 0 {
		t.Errorf("%s was missing from bird in %d polls (50 ms apart) through the graceful restart, want never", a, n)
	}
	if !birdRoute(t, bed.sock, a) {
		t.Errorf("%s gone after the graceful restart", a)
	}
	// The Restart State and Forwarding bits are what make bird wait for the End-of-RIB: without
	// them it drops the stale routes on the OPEN (RFC 4724 4.2), a gap of milliseconds that no
	// poll sees, so bird's own trace tells: "graceful restart done" must follow "Got END-OF-RIB".
	trace := bed.birdLog()
	done := strings.LastIndex(trace, "Neighbor graceful restart done")
	eor := strings.LastIndex(trace[:max(done, 0)], "Got END-OF-RIB")
	if done < 0 || eor < strings.LastIndex(trace[:max(done, 0)], "Got OPEN") {
		t.Errorf("bird ended the graceful restart before the restarted speaker's End-of-RIB:\n%s", trace)
	}
	touch(t, second, "stop")
	waitExit(t, second)
	eventually(t, "every route withdrawn by Stop", func() bool { return !birdRoute(t, bed.sock, a) })
}

// blackhole drops every packet in and out of the speaker namespace: a director that died
// without closing anything.
func blackhole(t *testing.T, ns string) {
	t.Helper()
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		run(t, "ip", "netns", "exec", ns, "iptables", "-w", "-I", chain, "-j", "DROP")
	}
}

func TestBirdBFD(t *testing.T) {
	const a = "10.0.0.100/32"
	for _, tc := range []struct{ name, bird, opts string }{
		{"hold timer 3s", birdBase + "}\n", "hold3"},
		// Graceful restart must not keep a dead speaker's routes: a hold timer expiry is no
		// restart (bird sends a NOTIFICATION, and without RFC 8538 that ends the routes).
		{"hold timer 3s, graceful restart", birdBase + "\tgraceful restart on;\n}\n", "hold3,gr"},
		{"bfd 300ms x3", birdBase + "\tbfd on;\n}\nprotocol bfd { interface \"*\" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }; }\n", "bfd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bed := newBirdBed(t, tc.bird)
			bed.speaker(t, "s", tc.opts, "10.0.0.100")
			eventually(t, a+" in bird", func() bool { return birdRoute(t, bed.sock, a) })
			if tc.opts == "bfd" {
				eventually(t, "bird's BFD session up", func() bool {
					out, _ := exec.Command("birdc", "-s", bed.sock, "show", "bfd", "sessions").CombinedOutput()
					return strings.Contains(string(out), "10.99.0.1") && strings.Contains(string(out), " Up ")
				})
			}
			blackhole(t, bed.sns)
			start := time.Now()
			eventually(t, a+" gone after the speaker went dark", func() bool { return !birdRoute(t, bed.sock, a) })
			took := time.Since(start)
			t.Logf("FIGURE %s: route gone %d ms after the speaker went dark", tc.name, took.Milliseconds())
			// BFD's point: the dead path is found before the (9 s) hold time would.
			if tc.opts == "bfd" && took >= 9*time.Second {
				t.Errorf("with BFD the route went after %v, no sooner than the hold time", took)
			}
		})
	}
}
