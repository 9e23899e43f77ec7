package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/health"
	"github.com/ravel-lb/ravel/netops"
)

// NodeHealth is what a realserver says on health.listen: whether its rules for each Kubernetes
// service are programmed, how many ready local endpoints each has, and whether it is draining.
// The realserver role writes it after each sync; the HTTP handler reads it from its own
// goroutines, hence the lock.
type NodeHealth struct {
	name string

	mu       sync.Mutex // guards the fields below
	draining bool
	synced   bool
	services []health.ServiceView
}

// NewNodeHealth returns the view of node name: not synced, serving nothing.
func NewNodeHealth(name string) *NodeHealth { return &NodeHealth{name: name} }

// View is the current view (a copy).
func (h *NodeHealth) View() health.NodeView {
	h.mu.Lock()
	defer h.mu.Unlock()
	return health.NodeView{Node: h.name, Synced: h.synced, Draining: h.draining, Services: slices.Clone(h.services)}
}

// SetDraining turns every answer to 503 "draining" (or back).
func (h *NodeHealth) SetDraining(d bool) {
	h.mu.Lock()
	h.draining = d
	h.mu.Unlock()
}

// Draining reports whether the node says it is draining.
func (h *NodeHealth) Draining() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.draining
}

// Programmed records a sync: local are the services whose DNAT rules were rendered, and
// applied says whether the apply succeeded. Every Kubernetes service of cfg is listed, the
// ones without local endpoints with 0, so a director can tell "no pods here" from "this node
// has not heard of the service".
func (h *NodeHealth) Programmed(cfg *config.Config, local []netops.LocalService, applied bool) {
	type key = netops.ServiceKey
	eps := make(map[key]int, len(local))
	for _, s := range local {
		eps[s.Key] = len(s.Endpoints)
	}
	var out []health.ServiceView
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if s.Kubernetes == nil {
			continue
		}
		for _, p := range s.Protocols {
			proto, _ := netops.ParseProto(p)
			n, ok := eps[key{VIP: s.VIP, Port: uint16(s.Port), Proto: proto}]
			out = append(out, health.ServiceView{VIP: s.VIP, Port: uint16(s.Port), Protocol: p,
				LocalEndpoints: n, RulesProgrammed: ok && applied && n > 0})
		}
	}
	slices.SortFunc(out, func(a, b health.ServiceView) int {
		if c := a.VIP.Compare(b.VIP); c != 0 {
			return c
		}
		if a.Port != b.Port {
			return int(a.Port) - int(b.Port)
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
	h.mu.Lock()
	h.services, h.synced = out, true
	h.mu.Unlock()
}

// Stopped records that the rules are gone (the role stood down or stopped): nothing is served.
func (h *NodeHealth) Stopped() {
	h.mu.Lock()
	for i := range h.services {
		h.services[i].RulesProgrammed = false
	}
	h.mu.Unlock()
}

// DrainDelay is how long a stopping realserver answers "draining" before it removes its
// rules: health.drainDelay, or 2 × health.interval + 1s, long enough for a director's check
// to see it twice. Zero without Kubernetes (nothing checks a static realserver's endpoint).
func DrainDelay(cfg *config.Config) time.Duration {
	if cfg.Kubernetes == nil {
		return 0
	}
	if d := cfg.Health.DrainDelay.D(); d > 0 {
		return d
	}
	return 2*cfg.Health.Interval.D() + time.Second
}

// HealthAddrs resolves health.listen for each family: a host names the one address the
// endpoint listens on (in its family's slot); an empty host means node.interface's addresses,
// its first IPv4 and its first global IPv6 one among ifAddrs. The director checks a node on
// its Kubernetes address of each family, at this port. A slot is invalid when the node has no
// such address.
func HealthAddrs(cfg *config.Config, ifAddrs []netip.Addr) (v4, v6 netip.AddrPort) {
	host, port := healthListenPort(cfg)
	if host.IsValid() {
		if host.Is6() {
			return netip.AddrPort{}, netip.AddrPortFrom(host, port)
		}
		return netip.AddrPortFrom(host, port), netip.AddrPort{}
	}
	for _, a := range ifAddrs {
		switch {
		case a.Is4() && !v4.IsValid():
			v4 = netip.AddrPortFrom(a, port)
		case a.Is6() && !a.IsLinkLocalUnicast() && !v6.IsValid():
			v6 = netip.AddrPortFrom(a, port)
		}
	}
	return v4, v6
}
