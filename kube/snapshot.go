package kube

import (
	"net/netip"
	"sort"
)

// Node is what ravel needs to know of a Kubernetes node.
type Node struct {
	Name string
	// Address is the node's primary (InternalIP) address; invalid if it has none.
	Address netip.Addr
	Ready   bool
	// Cordoned is spec.unschedulable.
	Cordoned bool
	// Selected is true when the node carries every label of kubernetes.nodeSelector.
	Selected bool
}

// Eligible reports whether the node may receive traffic: Ready, selected, with an address, and
// not cordoned unless includeCordoned.
func (n Node) Eligible(includeCordoned bool) bool {
	return n.Ready && n.Selected && n.Address.IsValid() && (includeCordoned || !n.Cordoned)
}

// ServiceRef names a port of a Kubernetes service, as a config service's `kubernetes` does.
type ServiceRef struct {
	Namespace string
	Service   string
	PortName  string
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

func (s *Snapshot) EligibleNodes(includeCordoned bool) []string {
	var out []string
	for name, n := range s.Nodes {
		if n.Eligible(includeCordoned) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
