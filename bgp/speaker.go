package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/ravel-lb/ravel/family"
)

// Peer is one neighbour's session settings.
type Peer struct {
	Address      netip.Addr
	ASN          uint32
	Port         uint16     // 0: 179
	LocalAddress netip.Addr // the source of the session; zero: the kernel's choice
	Password     string
	HoldTime     time.Duration
	Keepalive    time.Duration
	ConnectRetry time.Duration
	Multihop     uint8 // 0: directly connected
	// BFD, when Enabled, runs a BFD session (RFC 5880/5881, single hop, UDP 3784) beside the
	// BGP one: the peer learns a dead path in MinInterval × Multiplier, not the hold time.
	BFD BFD
	// GracefulRestart, when Enabled, offers the peer graceful restart (RFC 4724) for IPv4
	// unicast: the peer keeps ravel's routes for RestartTime when the session ends without a
	// NOTIFICATION (the process gone), until ravel's next session sends End-of-RIB.
	GracefulRestart GracefulRestart
}

// BFD is a peer's bidirectional forwarding detection.
type BFD struct {
	Enabled     bool
	MinInterval time.Duration // 0: GoBGP's 1 s
	Multiplier  uint8         // 0: 3
}

// GracefulRestart is a peer's graceful restart.
type GracefulRestart struct {
	Enabled     bool
	RestartTime time.Duration // whole seconds, 1..4095
}

// LargeCommunity is an RFC 8092 community GLOBAL:LOCAL1:LOCAL2.
type LargeCommunity struct{ Global, Local1, Local2 uint32 }

// Config is the speaker's identity and what it attaches to every announcement.
type Config struct {
	ASN              uint32
	RouterID         netip.Addr
	ListenPort       int32 // -1: accept no sessions
	Communities      []uint32
	LargeCommunities []LargeCommunity
	LocalPref        uint32     // 0: not sent
	MED              uint32     // 0: not sent
	NextHop          netip.Addr // zero: the session's local address (GoBGP rewrites 0.0.0.0)
	// Restarting says this speaker comes back within the peers' restart time from a stop that
	// left its routes on them: the OPENs of the first sessions carry graceful restart's Restart
	// State and Forwarding State bits, so a peer keeps the routes it holds from the last
	// session until this one's End-of-RIB (without the Forwarding bit RFC 4724 makes the peer
	// drop them at once). Peers added later are ordinary.
	Restarting bool
	// OnUpdate, when set, is called once per route the speaker hands GoBGP: kind "announce"
	// or "withdraw" (ravel_bgp_updates_sent_total).
	OnUpdate func(kind string)
}

// Speaker is a running BGP speaker. Its methods are safe for concurrent use.
type Speaker struct {
	s   *server.BgpServer
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	peers     map[netip.Addr]Peer // the sessions GoBGP has
	pending   []Peer              // SetPeers before the first Set: added by that Set
	primed    bool                // Set has been called
	announced map[netip.Addr]bool
}

// Start runs a speaker with cfg and no peers.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Speaker, error) {
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn) // GoBGP logs every state change at info; ravel logs its own
	s := server.NewBgpServer(server.LoggerOption(log.With("component", "gobgp"), lvl))
	go s.Serve()
	err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.ASN, RouterId: cfg.RouterID.String(), ListenPort: cfg.ListenPort,
	}})
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("start BGP (asn %d, router id %s): %w", cfg.ASN, cfg.RouterID, err)
	}
	return &Speaker{s: s, cfg: cfg, log: log, peers: map[netip.Addr]Peer{}, announced: map[netip.Addr]bool{}}, nil
}

func apiPeer(p Peer, restarting bool) *api.Peer {
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: p.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: uint64(p.HoldTime.Seconds()), KeepaliveInterval: uint64(p.Keepalive.Seconds()),
			ConnectRetry: uint64(max(p.ConnectRetry, time.Second).Seconds()),
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
		// A peer carries the routes of its own family: IPv4 VIPs to IPv4 peers, IPv6 VIPs
		// (/128) to IPv6 peers, each with the session's local address as next hop.
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
			Family: &api.Family{Afi: afi(family.Of(p.Address)), Safi: api.Family_SAFI_UNICAST}, Enabled: true}}},
	}
	if p.Port == 0 {
		ap.Transport.RemotePort = 179
	}
	if p.LocalAddress.IsValid() {
		ap.Transport.LocalAddress = p.LocalAddress.String()
	}
	if p.Multihop > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	if p.BFD.Enabled {
		// GoBGP takes the intervals in microseconds, as BFD's packets carry them.
		us := uint32(p.BFD.MinInterval.Microseconds())
		ap.Bfd = &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: us, RequiredMinimumReceive: us,
			DetectionMultiplier: uint32(p.BFD.Multiplier)}
	}
	if gr := p.GracefulRestart; gr.Enabled {
		// DeferralTime: while restarting GoBGP holds every update until all its peers sent
		// End-of-RIB, or this many seconds (its default, 360 s, would outlast the routes a
		// peer keeps when another peer is down).
		ap.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(gr.RestartTime.Seconds()),
			LocalRestarting: restarting, DeferralTime: grDeferral}
		ap.AfiSafis[0].MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	return ap
}

// grDeferral bounds how long a restarting speaker waits for its peers' End-of-RIB, in seconds.
const grDeferral = 5

// SetPeers makes the sessions those of peers, by diff: a peer whose settings are unchanged
// keeps its session; a changed one is replaced; a removed one is closed. Every error is
// returned, joined; the peers that worked are in place.
//
// Before the first Set the peers only wait: a session opened before ravel knows what it
// serves would send an empty table and End-of-RIB, and a peer helping a graceful restart
// would drop every route it kept.
func (sp *Speaker) SetPeers(ctx context.Context, peers []Peer) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.primed {
		sp.pending = slices.Clone(peers)
		return nil
	}
	return sp.setPeers(ctx, peers, false)
}

func (sp *Speaker) setPeers(ctx context.Context, peers []Peer, restarting bool) error {
	want := make(map[netip.Addr]Peer, len(peers))
	for _, p := range peers {
		want[p.Address] = p
	}
	var errs []error
	for _, a := range slices.SortedFunc(maps.Keys(sp.peers), netip.Addr.Compare) {
		if p, ok := want[a]; ok && p == sp.peers[a] {
			continue
		}
		if err := sp.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("remove peer %s: %w", a, err))
			continue
		}
		delete(sp.peers, a)
		sp.log.Info("BGP peer removed", "peer", a)
	}
	for _, a := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		if _, ok := sp.peers[a]; ok {
			continue
		}
		if err := sp.s.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(want[a], restarting)}); err != nil {
			errs = append(errs, fmt.Errorf("add peer %s: %w", a, err))
			continue
		}
		sp.peers[a] = want[a]
		sp.log.Info("BGP peer added", "peer", a, "asn", want[a].ASN)
	}
	return errors.Join(errs...)
}

// afi is the address family identifier of f.
func afi(f family.Family) api.Family_Afi {
	if f == family.IPv6 {
		return api.Family_AFI_IP6
	}
	return api.Family_AFI_IP
}

func (sp *Speaker) path(vip netip.Addr, withdraw bool) (*apiutil.Path, error) {
	f := family.Of(vip)
	nlri, err := bgp.NewIPAddrPrefix(f.Host(vip))
	if err != nil {
		return nil, err
	}
	rf, nh := bgp.RF_IPv4_UC, netip.IPv4Unspecified()
	if f == family.IPv6 {
		rf, nh = bgp.RF_IPv6_UC, netip.IPv6Unspecified()
	}
	// The unspecified address makes GoBGP put the session's local address there; a
	// configured next hop applies to the routes of its own family.
	if family.Of(sp.cfg.NextHop) == f {
		nh = sp.cfg.NextHop
	}
	nhAttr, err := bgp.NewPathAttributeNextHop(nh)
	if err != nil {
		return nil, err
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), nhAttr}
	if len(sp.cfg.Communities) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(sp.cfg.Communities))
	}
	if len(sp.cfg.LargeCommunities) > 0 {
		var lcs []*bgp.LargeCommunity
		for _, c := range sp.cfg.LargeCommunities {
			lcs = append(lcs, bgp.NewLargeCommunity(c.Global, c.Local1, c.Local2))
		}
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(lcs))
	}
	if sp.cfg.LocalPref > 0 {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(sp.cfg.LocalPref))
	}
	if sp.cfg.MED > 0 {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(sp.cfg.MED))
	}
	return &apiutil.Path{Family: rf, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}, nil
}

// Set announces exactly vips: the ones not announced yet are added, the ones no longer in
// the set are withdrawn at once. It returns what it could not do. The first Set also opens
// the sessions SetPeers named, after the routes are in place.
func (sp *Speaker) Set(vips map[netip.Addr]bool) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	errs := sp.set(vips)
	if !sp.primed {
		sp.primed = true
		if err := sp.setPeers(context.Background(), sp.pending, sp.cfg.Restarting); err != nil {
			errs = append(errs, err)
		}
		sp.pending = nil
	}
	return errors.Join(errs...)
}

func (sp *Speaker) sent(kind string) {
	if sp.cfg.OnUpdate != nil {
		sp.cfg.OnUpdate(kind)
	}
}

func (sp *Speaker) set(vips map[netip.Addr]bool) []error {
	var errs []error
	for _, v := range slices.SortedFunc(maps.Keys(sp.announced), netip.Addr.Compare) {
		if vips[v] {
			continue
		}
		p, err := sp.path(v, true)
		if err == nil {
			err = sp.s.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("withdraw %s: %w", family.Of(v).Host(v), err))
			continue
		}
		delete(sp.announced, v)
		sp.sent("withdraw")
		sp.log.Info("BGP route withdrawn", "vip", v)
	}
	for _, v := range slices.SortedFunc(maps.Keys(vips), netip.Addr.Compare) {
		if !vips[v] || sp.announced[v] {
			continue
		}
		p, err := sp.path(v, false)
		if err == nil {
			_, err = sp.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("announce %s: %w", family.Of(v).Host(v), err))
			continue
		}
		sp.announced[v] = true
		sp.sent("announce")
		sp.log.Info("BGP route announced", "vip", v)
	}
	return errs
}

// SetAttributes changes what every announcement carries (communities, local preference, MED,
// next hop) and re-announces what is announced with them: the peers see an update, never a
// reset session. ASN, router id and listen port are fixed for the speaker's life.
func (sp *Speaker) SetAttributes(cfg Config) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if slices.Equal(cfg.Communities, sp.cfg.Communities) && slices.Equal(cfg.LargeCommunities, sp.cfg.LargeCommunities) &&
		cfg.LocalPref == sp.cfg.LocalPref && cfg.MED == sp.cfg.MED && cfg.NextHop == sp.cfg.NextHop {
		return nil
	}
	sp.cfg.Communities, sp.cfg.LargeCommunities = slices.Clone(cfg.Communities), slices.Clone(cfg.LargeCommunities)
	sp.cfg.LocalPref, sp.cfg.MED, sp.cfg.NextHop = cfg.LocalPref, cfg.MED, cfg.NextHop
	var errs []error
	for _, v := range slices.SortedFunc(maps.Keys(sp.announced), netip.Addr.Compare) {
		p, err := sp.path(v, false)
		if err == nil {
			_, err = sp.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}}) // replaces the path
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("re-announce %s: %w", family.Of(v).Host(v), err))
			continue
		}
		sp.sent("announce")
	}
	sp.log.Info("BGP attributes changed: announcements updated", "routes", len(sp.announced))
	return errors.Join(errs...)
}

// PeerStatus is one session as the speaker sees it.
type PeerStatus struct {
	Address netip.Addr
	State   string // idle, connect, active, opensent, openconfirm, established
	Uptime  time.Time
	// Reason is why the session last went down, as GoBGP reports it (a NOTIFICATION from the
	// peer, "bad peer AS", a hold timer expiry), "" when none.
	Reason string
	// Sent is how many routes the peer has from this speaker now (IPv4 unicast).
	Sent uint64
}

// Peers lists the sessions.
func (sp *Speaker) Peers(ctx context.Context) ([]PeerStatus, error) {
	var out []PeerStatus
	err := sp.s.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		st := PeerStatus{State: "unknown"}
		if p.Conf != nil {
			st.Address, _ = netip.ParseAddr(p.Conf.NeighborAddress)
		}
		if p.State != nil {
			st.State = sessionState(p.State.SessionState)
			st.Reason = p.State.DisconnectMessage
			if st.Reason == "" && p.State.DisconnectReason != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
				st.Reason = strings.ToLower(strings.TrimPrefix(p.State.DisconnectReason.String(), "DISCONNECT_REASON_"))
			}
		}
		for _, af := range p.AfiSafis {
			if af.State != nil {
				st.Sent += af.State.Advertised
			}
		}
		if p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			st.Uptime = p.Timers.State.Uptime.AsTime()
		}
		out = append(out, st)
	})
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out, err
}

func sessionState(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_SESSION_STATE_IDLE:
		return "idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "opensent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "established"
	}
	return "unknown"
}

// Stop withdraws every route, closes the sessions and stops the speaker.
func (sp *Speaker) Stop(ctx context.Context) error {
	sp.mu.Lock()
	sp.primed = true // nothing pending opens now
	sp.pending = nil
	err := errors.Join(sp.set(nil)...)
	sp.mu.Unlock()
	if serr := sp.s.StopBgp(ctx, &api.StopBgpRequest{}); serr != nil {
		err = errors.Join(err, serr)
	}
	sp.s.Stop()
	return err
}

// GracefulRestart reports the longest restart time among the peers that have graceful restart
// enabled, 0 when none has: how long a stop without Stop leaves the routes on the peers.
func (sp *Speaker) GracefulRestart() time.Duration {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var longest time.Duration
	for _, p := range sp.peers {
		if p.GracefulRestart.Enabled {
			longest = max(longest, p.GracefulRestart.RestartTime)
		}
	}
	return longest
}
