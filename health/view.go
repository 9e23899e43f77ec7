package health

import (
	"net/netip"
)

// NodeView is what a realserver says about itself on GET /healthz: shared by the realserver's
// handler and the director's check.
type NodeView struct {
	Node string `json:"node"`
	// Synced is set once the realserver has had its first snapshot and sync.
	Synced   bool          `json:"synced"`
	Draining bool          `json:"draining"`
	Services []ServiceView `json:"services"`
}

// ServiceView is one Kubernetes service as the realserver serves it.
type ServiceView struct {
	VIP             netip.Addr `json:"vip"`
	Port            uint16     `json:"port"`
	Protocol        string     `json:"protocol"` // tcp or udp
	LocalEndpoints  int        `json:"localEndpoints"`
	RulesProgrammed bool       `json:"rulesProgrammed"`
}

// ServiceID identifies a service in a view.
type ServiceID struct {
	VIP      netip.Addr
	Port     uint16
	Protocol string
}

// Index maps the view's services by ID. The director asks about every service of a node in
// one answer: one map per answer, not a search per service.
func (v *NodeView) Index() map[ServiceID]ServiceView {
	m := make(map[ServiceID]ServiceView, len(v.Services))
	for _, s := range v.Services {
		m[ServiceID{s.VIP, s.Port, s.Protocol}] = s
	}
	return m
}

// Serving reports whether the view says this node serves vip:port/protocol now: synced, not
// draining, the service listed with its rules programmed and at least one local endpoint.
func (v *NodeView) Serving(vip netip.Addr, port uint16, protocol string) bool {
	if !v.Synced || v.Draining {
		return false
	}
	for _, s := range v.Services {
		if s.VIP == vip && s.Port == port && s.Protocol == protocol {
			return s.RulesProgrammed && s.LocalEndpoints > 0
		}
	}
	return false
}
