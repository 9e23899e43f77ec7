package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/ravel-lb/ravel/bgp"
)

// PeerLister lists BGP sessions (bgp.Speaker).
type PeerLister interface {
	Peers(ctx context.Context) ([]bgp.PeerStatus, error)
}

// PeerReport is one BGP session in the status.
type PeerReport struct {
	Address string    `json:"address"`
	State   string    `json:"state"`
	Since   time.Time `json:"since,omitzero"`   // when the session was established
	Reason  string    `json:"reason,omitempty"` // why it last went down
	Sent    uint64    `json:"prefixesSent"`     // routes the peer has from this director
}

var bgpStates = []string{"idle", "connect", "active", "opensent", "openconfirm", "established", "unknown"}

// WatchBGPPeers polls the sessions every period until ctx ends: ravel_bgp_peer_up{peer} and
// ravel_bgp_peer_state{peer,state}, one log line per state change, and the status's peers.
func WatchBGPPeers(ctx context.Context, sp PeerLister, m *Metrics, st *Status, log *slog.Logger, period time.Duration) {
	last := map[string]string{}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		ps, err := sp.Peers(ctx)
		if err == nil {
			seen := map[string]bool{}
			reports := make([]PeerReport, 0, len(ps))
			for _, p := range ps {
				a := p.Address.String()
				seen[a] = true
				if last[a] != p.State {
					if p.State != "established" && p.Reason != "" {
						log.Warn("BGP session down", "peer", a, "state", p.State, "was", last[a], "reason", p.Reason)
					} else {
						log.Info("BGP session state", "peer", a, "state", p.State, "was", last[a])
					}
					last[a] = p.State
				}
				up := 0.0
				if p.State == "established" {
					up = 1
				}
				m.BGPPeerUp.WithLabelValues(a).Set(up)
				for _, s := range bgpStates {
					v := 0.0
					if s == p.State {
						v = 1
					}
					m.BGPPeerState.WithLabelValues(a, s).Set(v)
				}
				r := PeerReport{Address: a, State: p.State, Reason: p.Reason, Sent: p.Sent}
				if up == 1 {
					r.Since = p.Uptime
				}
				reports = append(reports, r)
			}
			for a := range last {
				if !seen[a] {
					delete(last, a)
					m.BGPPeerUp.DeleteLabelValues(a)
					for _, s := range bgpStates {
						m.BGPPeerState.DeleteLabelValues(a, s)
					}
				}
			}
			if st != nil {
				st.SetBGPPeers(reports)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
