package bgp

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/internal/bgptest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func vips(as ...string) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, a := range as {
		m[netip.MustParseAddr(a)] = true
	}
	return m
}

func TestSpeakerAnnouncesWithdrawsKeepsSessions(t *testing.T) {
	rt := bgptest.NewRouter(t, 65010)
	port := rt.Port
	ctx := context.Background()
	var mu sync.Mutex
	sent := map[string]int{}
	count := func(kind string) { mu.Lock(); sent[kind]++; mu.Unlock() }
	sentNow := func() map[string]int { mu.Lock(); defer mu.Unlock(); return maps.Clone(sent) }
	sp, err := Start(ctx, Config{ASN: 65010, RouterID: netip.MustParseAddr("127.0.0.1"), ListenPort: -1, OnUpdate: count}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = sp.Stop(ctx)
		}
	}()
	peer := Peer{Address: netip.MustParseAddr("127.0.0.2"), ASN: 65000, Port: port, LocalAddress: netip.MustParseAddr("127.0.0.1"),
		HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second}
	if err := sp.SetPeers(ctx, []Peer{peer}); err != nil {
		t.Fatal(err)
	}
	established := func() bool {
		ps, err := sp.Peers(ctx)
		return err == nil && len(ps) == 1 && ps[0].State == "established"
	}
	// Before the first Set the speaker does not know what it serves: no session yet, so no
	// empty table and End-of-RIB reach the router.
	time.Sleep(1500 * time.Millisecond) // longer than the peer's connect retry
	if ps, err := sp.Peers(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("before the first Set: sessions %+v (%v), want none", ps, err)
	}

	if err := sp.Set(vips("10.0.0.100", "10.0.0.101")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session", established)
	eventually(t, "both routes on the router", func() bool {
		return slices.Equal(rt.Routes(t), []string{"10.0.0.100/32", "10.0.0.101/32"})
	})
	if err := sp.Set(vips("10.0.0.100")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "10.0.0.101 withdrawn", func() bool { return slices.Equal(rt.Routes(t), []string{"10.0.0.100/32"}) })
	if ps, err := sp.Peers(ctx); err != nil || len(ps) != 1 || ps[0].Sent != 1 {
		t.Errorf("Peers() = %+v (%v), want one peer with 1 route sent", ps, err)
	}
	if got := sentNow(); got["announce"] != 2 || got["withdraw"] != 1 {
		t.Errorf("updates counted %v, want 2 announce and 1 withdraw", got)
	}
	// Setting the same set again sends nothing.
	if err := sp.Set(vips("10.0.0.100")); err != nil {
		t.Fatal(err)
	}
	if got := sentNow(); got["announce"] != 2 || got["withdraw"] != 1 {
		t.Errorf("an unchanged Set counted updates: %v", got)
	}

	// New attributes re-announce the routes with them, without touching the session.
	before, _ := sp.Peers(ctx)
	if err := sp.SetAttributes(Config{Communities: []uint32{65010<<16 | 100}, LargeCommunities: []LargeCommunity{{65010, 1, 4000000000}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the communities on the route", func() bool {
		return slices.Equal(rt.Communities(t, "10.0.0.100/32"), []string{"65010:100", "65010:1:4000000000"})
	})

	// A reload that keeps the peer as it is must not touch its session either.
	time.Sleep(1100 * time.Millisecond) // an uptime reset would show at second resolution
	if err := sp.SetPeers(ctx, []Peer{peer}); err != nil {
		t.Fatal(err)
	}
	after, _ := sp.Peers(ctx)
	if !established() || !after[0].Uptime.Equal(before[0].Uptime) {
		t.Errorf("an unchanged peer's session: uptime %v -> %v, want it kept", before[0].Uptime, after[0].Uptime)
	}

	// Removing the peer closes its session; the router drops the speaker's routes.
	if err := sp.SetPeers(ctx, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the router to drop the routes of a removed peer", func() bool { return len(rt.Routes(t)) == 0 })
	if err := sp.SetPeers(ctx, []Peer{peer}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session again", established)
	eventually(t, "the announced VIP sent to the new session", func() bool { return slices.Equal(rt.Routes(t), []string{"10.0.0.100/32"}) })

	// Stop withdraws everything before closing.
	if err := sp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	eventually(t, "no route after Stop", func() bool { return len(rt.Routes(t)) == 0 })
}
