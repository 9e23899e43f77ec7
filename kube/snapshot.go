package kube

import (
	"net/netip"
	"sort"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/schema"
)

// Node is what ravel needs to know of a Kubernetes node.
type Node struct {
	Name string
	// Address is the node's primary IPv4 address (its first IPv4 InternalIP, else ExternalIP),
	// the destination of IPv4 services; invalid if it has none.
	Address netip.Addr
	// Address6 is the same for IPv6 (a dual-stack or IPv6-only node).
	Address6 netip.Addr
	Ready    bool
	// Cordoned is spec.unschedulable.
	Cordoned bool
	// Selected is true when the node carries every label of kubernetes.nodeSelector.
	Selected bool
}

// AddressOf is the node's primary address of family f: the destination a service of that
// family sends it traffic on.
func (n Node) AddressOf(f family.Family) netip.Addr {
	switch f {
	case family.IPv4:
		return n.Address
	case family.IPv6:
		return n.Address6
	}
	return netip.Addr{}
}

// Eligible reports whether the node may receive traffic of family f: Ready, selected, with an
// address of f, and not cordoned unless includeCordoned.
func (n Node) Eligible(f family.Family, includeCordoned bool) bool {
	return n.Ready && n.Selected && n.AddressOf(f).IsValid() && (includeCordoned || !n.Cordoned)
}

// ServiceRef names a port of a Kubernetes service in one address family, as a config
// service's `kubernetes` does with its VIP's family: an IPv4 and an IPv6 VIP on one dual-stack
// Kubernetes service are two refs, each fed by the EndpointSlices of its own family.
type ServiceRef struct {
	Namespace string
	Service   string
	PortName  string
	Family    family.Family
}

// RefOf is the ref of a config service's Kubernetes target t, served on vip.
func RefOf(t *schema.KubeTarget, vip netip.Addr) ServiceRef {
	return ServiceRef{Namespace: t.Namespace, Service: t.Service, PortName: t.PortName, Family: family.Of(vip)}
}

// Status says why a service does or does not have endpoints.
type Status string

// Statuses of a ServiceState.
const (
	StatusOK           Status = "ok"
	StatusNoEndpoints  Status = "no-ready-endpoints"
	StatusHeadless     Status = "headless"
	StatusExternalName Status = "external-name"
	StatusNoSuchPort   Status = "no-such-port"
	StatusNotFound     Status = "not-found"
)

// Endpoint is one backend pod address of a service port.
type Endpoint struct {
	Address     netip.Addr
	NodeName    string
	Ready       bool
	Serving     bool
	Terminating bool
	// Port is the endpoint's port for the referenced port name (the pod's target port).
	Port uint16
}

// ServiceState is one configured service as the cluster sees it.
type ServiceState struct {
	Status Status
	// Endpoints are every endpoint of the port, ready or not, sorted by address and port.
	Endpoints []Endpoint
}

// ReadyByNode counts the ready endpoints on each node.
func (s ServiceState) ReadyByNode() map[string]int {
	m := map[string]int{}
	for _, e := range s.Endpoints {
		if e.Ready {
			m[e.NodeName]++
		}
	}
	return m
}

// ReadyOn returns the ready endpoints on node, in Endpoints order.
func (s ServiceState) ReadyOn(node string) []Endpoint {
	var out []Endpoint
	for _, e := range s.Endpoints {
		if e.Ready && e.NodeName == node {
			out = append(out, e)
		}
	}
	return out
}

// Snapshot is a consistent view of the cluster, published only once every informer has synced.
// It is read-only once published.
type Snapshot struct {
	// Nodes holds every known node by name (eligible or not).
	Nodes map[string]Node
	// Services holds each configured service reference.
	Services map[ServiceRef]ServiceState
	// Stale is true when the safety valve is holding last known endpoints: the API is
	// unreachable (everything is then the last known state), or a re-list came back empty for
	// a service or for the node list and that is not confirmed yet (see valve.go). Only with
	// kubernetes.keepLastEndpoints.
	Stale bool
	// Changed lists the service refs whose state differs from the previous snapshot, and
	// NodesChanged says whether any node did; a consumer may recompute only those. The first
	// snapshot lists every ref and sets NodesChanged.
	Changed      []ServiceRef
	NodesChanged bool
}

// EligibleNodes returns the names of the nodes that may receive traffic, sorted.
// Knows reports whether the snapshot's watches follow ref: false for a target a reload just
// added, until the watches that follow it have synced and publish.
func (s *Snapshot) Knows(ref ServiceRef) bool {
	_, ok := s.Services[ref]
	return ok
}

func (s *Snapshot) EligibleNodes(f family.Family, includeCordoned bool) []string {
	var out []string
	for name, n := range s.Nodes {
		if n.Eligible(f, includeCordoned) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
