package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ravel-lb/ravel/bgp"
	"github.com/ravel-lb/ravel/daemon"
)

// bgpConfig turns the config's bgp section into the speaker's; ifAddr is node.interface's
// address, the router id when bgp.routerId is left out.
func bgpConfig(cfg *configT, ifAddr netip.Addr) (bgp.Config, []bgp.Peer) {
	b := cfg.BGP
	c := bgp.Config{ASN: uint32(b.ASN), RouterID: ifAddr, ListenPort: int32(b.ListenPort),
		LocalPref: uint32(b.LocalPreference), MED: uint32(b.MED)}
	if b.RouterID != nil {
		c.RouterID = *b.RouterID
	}
	if b.NextHop != nil {
		c.NextHop = *b.NextHop
	}
	for _, cm := range b.Communities {
		hi, lo, _ := strings.Cut(cm, ":") // validated ASN:VALUE
		h, _ := strconv.ParseUint(hi, 10, 16)
		l, _ := strconv.ParseUint(lo, 10, 16)
		c.Communities = append(c.Communities, uint32(h)<<16|uint32(l))
	}
	for _, lc := range b.LargeCommunities {
		var v [3]uint32
		for i, part := range strings.SplitN(lc, ":", 3) { // validated GLOBAL:LOCAL1:LOCAL2
			n, _ := strconv.ParseUint(part, 10, 32)
			v[i] = uint32(n)
		}
		c.LargeCommunities = append(c.LargeCommunities, bgp.LargeCommunity{Global: v[0], Local1: v[1], Local2: v[2]})
	}
	var peers []bgp.Peer
	for _, p := range b.Peers {
		peers = append(peers, bgp.Peer{Address: p.Address, ASN: uint32(p.ASN), Port: uint16(p.Port), Password: p.Password,
			HoldTime: p.HoldTime.D(), Keepalive: p.KeepaliveTime.D(), ConnectRetry: p.ConnectRetry.D(), Multihop: uint8(p.Multihop),
			BFD:             bgp.BFD{Enabled: p.BFD.Enabled, MinInterval: p.BFD.MinInterval.D(), Multiplier: uint8(p.BFD.Multiplier)},
			GracefulRestart: bgp.GracefulRestart{Enabled: p.GracefulRestart.Enabled, RestartTime: p.GracefulRestart.RestartTime.D()},
		})
	}
	return c, peers
}

// startBGP runs the bgp role's speaker with its peers; the sessions open after the first sync
// (bgp.Speaker.SetPeers). SIGUSR1 withdraws every route before maintenance and SIGUSR2
// announces again. The returned stop, called at SIGTERM: with graceful restart on any peer it
// leaves the routes on the peers (the kernel keeps forwarding; the next start within the
// restart time takes them back without a withdrawal), otherwise it withdraws every route and
// then closes the sessions.
func startBGP(ctx context.Context, cfg *configT, ifAddr netip.Addr, d *daemon.Director, m *daemon.Metrics, st *daemon.Status, log *slog.Logger) (*bgp.Speaker, func(), error) {
	bc, peers := bgpConfig(cfg, ifAddr)
	if !bc.RouterID.IsValid() {
		return nil, nil, fmt.Errorf("bgp.routerId: not set and node.interface %s has no IPv4 address", cfg.Node.Interface)
	}
	mark := daemon.NewBGPRestartMark(daemon.DefaultStateDir)
	restarting, err := mark.Take(time.Now())
	if err != nil {
		log.Warn("BGP graceful restart mark unreadable: starting as new", "err", err)
	}
	if restarting {
		log.Info("BGP graceful restart: the peers keep this director's routes until its End-of-RIB")
	}
	bc.Restarting = restarting
	bc.OnUpdate = func(kind string) { m.BGPUpdates.WithLabelValues(kind).Inc() }
	sp, err := bgp.Start(ctx, bc, log)
	if err != nil {
		return nil, nil, err
	}
	if err := sp.SetPeers(ctx, peers); err != nil {
		log.Error("BGP peers", "err", err)
	}
	go daemon.WatchBGPPeers(ctx, sp, m, st, log, 2*time.Second)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		defer signal.Stop(sigs)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				log.Info("BGP drain signal", "signal", s.String())
				d.DrainBGP(s == syscall.SIGUSR1)
			}
		}
	}()
	stop := func() {
		if rt := sp.GracefulRestart(); rt > 0 {
			// No Stop: it would withdraw and send a NOTIFICATION, and a peer drops the routes
			// of a session closed by a NOTIFICATION. The process exits next and the kernel
			// closes the sessions' sockets; the peers keep the routes as stale for rt.
			if err := mark.Leave(time.Now().Add(rt)); err != nil {
				log.Error("BGP graceful restart: cannot leave the restart mark; the next start will not take the routes back", "err", err)
			}
			log.Info("BGP graceful restart: routes left on the peers", "restartTime", rt)
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sp.Stop(sctx); err != nil {
			log.Error("stopping BGP", "err", err)
		} else {
			log.Info("BGP routes withdrawn and sessions closed")
		}
	}
	return sp, stop, nil
}
