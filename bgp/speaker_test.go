package bgp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// router is an in-process GoBGP peer on 127.0.0.2 that accepts the speaker's session (as
// GoBGP's own server tests pair two servers on loopback).
func router(t *testing.T) (*server.BgpServer, uint16) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	r := server.NewBgpServer(server.LoggerOption(quiet, &slog.LevelVar{}))
	go r.Serve()
	ctx := context.Background()
	if err := r.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "127.0.0.2",
		ListenPort: int32(port), ListenAddresses: []string{"127.0.0.2"}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65010},
		Transport: &api.Transport{PassiveMode: true},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.StopBgp(context.Background(), &api.StopBgpRequest{}); r.Stop() })
	return r, port
}

// routes lists the /32s the router learned.
func routes(t *testing.T, r *server.BgpServer) []string {
	t.Helper()
	var out []string
	err := r.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gobgp.RF_IPv4_UC},
		func(prefix gobgp.NLRI, _ []*apiutil.Path) { out = append(out, prefix.String()) })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

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
	r, port := router(t)
	ctx := context.Background()
	sp, err := Start(ctx, Config{ASN: 65010, RouterID: netip.MustParseAddr("127.0.0.1"), ListenPort: -1}, quiet)
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
	eventually(t, "the session", established)

	if err := sp.Set(vips("10.0.0.100", "10.0.0.101")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both routes on the router", func() bool {
		return slices.Equal(routes(t, r), []string{"10.0.0.100/32", "10.0.0.101/32"})
	})
	if err := sp.Set(vips("10.0.0.100")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "10.0.0.101 withdrawn", func() bool { return slices.Equal(routes(t, r), []string{"10.0.0.100/32"}) })

	// A reload that keeps the peer as it is must not touch its session.
	before, _ := sp.Peers(ctx)
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
	eventually(t, "the router to drop the routes of a removed peer", func() bool { return len(routes(t, r)) == 0 })
	if err := sp.SetPeers(ctx, []Peer{peer}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session again", established)
	eventually(t, "the announced VIP sent to the new session", func() bool { return slices.Equal(routes(t, r), []string{"10.0.0.100/32"}) })

	// Stop withdraws everything before closing.
	if err := sp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	eventually(t, "no route after Stop", func() bool { return len(routes(t, r)) == 0 })
}
