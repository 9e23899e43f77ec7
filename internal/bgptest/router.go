// Package bgptest runs an in-process GoBGP router for tests: it accepts one speaker's session
// on loopback and lists the routes it learned, as GoBGP's own server tests pair two servers.
package bgptest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Router is a GoBGP server on 127.0.0.2 (ASN 65000) that waits for a session from 127.0.0.1
// with ASN speakerASN.
type Router struct {
	s    *server.BgpServer
	Port uint16
}

// NewRouter starts a router that stops with the test; it skips the test without 127.0.0.2.
func NewRouter(t testing.TB, speakerASN uint32) *Router {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	s := server.NewBgpServer(server.LoggerOption(slog.New(slog.NewTextHandler(io.Discard, nil)), &slog.LevelVar{}))
	go s.Serve()
	ctx := context.Background()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "127.0.0.2",
		ListenPort: int32(port), ListenAddresses: []string{"127.0.0.2"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: speakerASN},
		Transport: &api.Transport{PassiveMode: true},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.StopBgp(context.Background(), &api.StopBgpRequest{}); s.Stop() })
	return &Router{s: s, Port: port}
}

// Communities lists the communities of the router's best path to prefix ("10.0.0.1/32"),
// as ASN:VALUE, then its large communities as GLOBAL:LOCAL1:LOCAL2.
func (r *Router) Communities(t testing.TB, prefix string) []string {
	t.Helper()
	var out []string
	err := r.s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gobgp.RF_IPv4_UC},
		func(p gobgp.NLRI, paths []*apiutil.Path) {
			if p.String() != prefix {
				return
			}
			for _, path := range paths {
				for _, a := range path.Attrs {
					if c, ok := a.(*gobgp.PathAttributeCommunities); ok {
						for _, v := range c.Value {
							out = append(out, fmt.Sprintf("%d:%d", v>>16, v&0xffff))
						}
					}
					if c, ok := a.(*gobgp.PathAttributeLargeCommunities); ok {
						for _, v := range c.Values {
							out = append(out, fmt.Sprintf("%d:%d:%d", v.ASN, v.LocalData1, v.LocalData2))
						}
					}
				}
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Routes lists the IPv4 prefixes the router learned, sorted.
func (r *Router) Routes(t testing.TB) []string {
	t.Helper()
	var out []string
	err := r.s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gobgp.RF_IPv4_UC},
		func(prefix gobgp.NLRI, _ []*apiutil.Path) { out = append(out, prefix.String()) })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
