package daemon

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ravel-lb/ravel/bgp"
	"github.com/ravel-lb/ravel/health"
	"github.com/ravel-lb/ravel/internal/bgptest"
	"github.com/ravel-lb/ravel/netops"
)

// TestDirectorAnnouncesServingVIPs: the bgp role announces a VIP while one of its services has
// a healthy destination with a weight, withdraws it when none has (a hold included: another
// director should carry it), and withdraws everything while drained; all seen on a GoBGP
// router (issue 12).
func TestDirectorAnnouncesServingVIPs(t *testing.T) {
	rt := bgptest.NewRouter(t, 65010)
	ctx := context.Background()
	sp, err := bgp.Start(ctx, bgp.Config{ASN: 65010, RouterID: netip.MustParseAddr("127.0.0.1"), ListenPort: -1}, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop(ctx)
	if err := sp.SetPeers(ctx, []bgp.Peer{{Address: netip.MustParseAddr("127.0.0.2"), ASN: 65000, Port: rt.Port,
		LocalAddress: netip.MustParseAddr("127.0.0.1"), HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second}}); err != nil {
		t.Fatal(err)
	}
	cfg := parseYAML(t, `node: {name: director-1, role: bgp}
vipPool: [10.0.0.1, 10.0.0.2]
defaults:
  healthCheck: {type: tcp, interval: 2s, timeout: 1s, rise: 1, fall: 1}
services:
  - {name: web, vip: 10.0.0.1, port: 80, backends: [{address: 10.0.1.1}]}
  - {name: api, vip: 10.0.0.2, port: 80, backends: [{address: 10.0.1.2}, {address: 10.0.1.3}]}
bgp: {asn: 65010, peers: [{address: 127.0.0.2, asn: 65000}]}
`)
	f := newFakes()
	m := NewMetrics(prometheus.NewRegistry())
	d := NewDirector(cfg, nodeOf(cfg), f.kernel(), nil, discard, m)
	checks := NewChecks(m, 4)
	d.SetChecks(checks)
	d.SetBGP(sp)
	st := NewStatus("test", cfg)
	d.SetStatus(st)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(runCtx, nil) }()
	defer func() { cancel(); <-done }()

	routes := func(want ...string) func() bool {
		return func() bool { return slices.Equal(rt.Routes(t), want) }
	}
	wctx, wcancel := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() { defer close(wdone); WatchBGPPeers(wctx, sp, m, st, discard, 50*time.Millisecond) }()
	defer func() { wcancel(); <-wdone }()
	waitFor(t, "ravel_bgp_peer_up 1 and the peer in the status", func() bool {
		ps := st.Report().BGPPeers
		return value(t, m.BGPPeerUp.WithLabelValues("127.0.0.2")) == 1 && len(ps) == 1 && ps[0].State == "established" && !ps[0].Since.IsZero()
	})
	waitFor(t, "both VIPs announced", routes("10.0.0.1/32", "10.0.0.2/32"))
	if value(t, m.BGPAnnounced) != 2 {
		t.Errorf("ravel_bgp_announced_prefixes = %v, want 2", value(t, m.BGPAnnounced))
	}
	fail := func(backend string) {
		id := backendJob(backendID{svcID{netip.MustParseAddr(strings.Split(backend, "/")[0]), 80},
			netops.DestKey{Addr: netip.MustParseAddr(strings.Split(backend, "/")[1]), Port: 80}})
		d.checks.results <- checkResult{id, health.Result{Reason: "connect: connection refused"}}
	}
	fail("10.0.0.2/10.0.1.2") // one of api's two: api still serves
	time.Sleep(300 * time.Millisecond)
	if got := rt.Routes(t); !slices.Equal(got, []string{"10.0.0.1/32", "10.0.0.2/32"}) {
		t.Errorf("one of two backends down: routes %v, want both", got)
	}
	fail("10.0.0.1/10.0.1.1") // web's only backend: held in IPVS, withdrawn from BGP
	waitFor(t, "web's VIP withdrawn", routes("10.0.0.2/32"))
	if w := st.Report().Withheld; len(w) != 1 || w[0].VIP != netip.MustParseAddr("10.0.0.1") || !strings.Contains(w[0].Reason, "held") {
		t.Errorf("status withheld %+v, want 10.0.0.1 held", w)
	}
	waitFor(t, "the peer's prefixes sent in the status", func() bool {
		ps := st.Report().BGPPeers
		return len(ps) == 1 && ps[0].Sent == 1
	})
	d.DrainBGP(true)
	waitFor(t, "everything withdrawn while drained", routes())
	d.DrainBGP(false)
	waitFor(t, "api's VIP back after the drain", routes("10.0.0.2/32"))
}
