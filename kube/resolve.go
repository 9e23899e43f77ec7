package kube

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/ravel-lb/ravel/family"
)

// These functions are pure: API objects in, snapshot values out. The Source feeds them from its
// caches; the unit tests feed them hand-built objects.

// nodeFromAPI turns a Node object into a Node. selector is kubernetes.nodeSelector.
func nodeFromAPI(n *corev1.Node, selector map[string]string) Node {
	out := Node{
		Name:     n.Name,
		Address:  primaryAddress(n.Status.Addresses, family.IPv4),
		Address6: primaryAddress(n.Status.Addresses, family.IPv6),
		Cordoned: n.Spec.Unschedulable,
		Selected: true,
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
			break
		}
	}
	for k, v := range selector {
		if got, ok := n.Labels[k]; !ok || got != v {
			out.Selected = false
			break
		}
	}
	return out
}

// primaryAddress is the node's first InternalIP of family f, or else its first ExternalIP of
// f; the zero Addr if it has neither (such a node is never eligible for f). A dual-stack node
// may list either family first: each family's services take that family's address (an IPv4
// service with an IPv6 destination is refused by IPVS).
func primaryAddress(addrs []corev1.NodeAddress, f family.Family) netip.Addr {
	for _, want := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range addrs {
			if a.Type != want {
				continue
			}
			if ip, ok := parseFamily(a.Address, f); ok {
				return ip
			}
		}
	}
	return netip.Addr{}
}

// parseFamily parses s as an address of family f. An IPv4-mapped IPv6 address counts as IPv4
// (the API server accepts both spellings of an IPv4 address in some fields); a zone is refused.
func parseFamily(s string, f family.Family) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	return ip, f.Has(ip)
}

// sliceType is the EndpointSlice addressType of family f.
func sliceType(f family.Family) discoveryv1.AddressType {
	if f == family.IPv6 {
		return discoveryv1.AddressTypeIPv6
	}
	return discoveryv1.AddressTypeIPv4
}

// resolveService resolves one service port from its Service object (nil if it doesn't exist)
// and the EndpointSlices labelled with its name. detail explains an exclusion for the log.
func resolveService(svc *corev1.Service, eps []*endpointSlice, portName string, f family.Family) (state ServiceState, detail string) {
	switch {
	case svc == nil:
		return ServiceState{Status: StatusNotFound}, "the Service does not exist"
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return ServiceState{Status: StatusExternalName}, fmt.Sprintf("type ExternalName (%s) has no endpoints", svc.Spec.ExternalName)
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		return ServiceState{Status: StatusHeadless}, "headless (clusterIP: None)"
	}
	if !hasPort(svc, portName) {
		return ServiceState{Status: StatusNoSuchPort}, fmt.Sprintf("no port named %q; the Service has %s", portName, portNames(svc))
	}
	state.Endpoints = endpointsOf(eps, portName, f)
	for _, e := range state.Endpoints {
		if e.Ready {
			state.Status = StatusOK
			return state, ""
		}
	}
	state.Status = StatusNoEndpoints
	if len(state.Endpoints) == 0 {
		return state, fmt.Sprintf("no %s EndpointSlice lists an endpoint for the port", f)
	}
	return state, fmt.Sprintf("%d endpoints, none ready", len(state.Endpoints))
}

// hasPort reports whether the Service has a port called name. An empty name matches only a
// Service with a single unnamed port (the API requires names when there are several).
func hasPort(svc *corev1.Service, name string) bool {
	if name == "" {
		return len(svc.Spec.Ports) == 1 && svc.Spec.Ports[0].Name == ""
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func portNames(svc *corev1.Service) string {
	if len(svc.Spec.Ports) == 0 {
		return "no ports"
	}
	var names []string
	for _, p := range svc.Spec.Ports {
		names = append(names, fmt.Sprintf("%q (%d/%s)", p.Name, p.Port, p.Protocol))
	}
	return "ports " + strings.Join(names, ", ")
}

// endpointsOf collects the endpoints of port portName from every EndpointSlice of family f, deduped by
// (address, port) and sorted. An endpoint listed by two slices (the controller moves endpoints
// between slices in two writes) counts once; if the copies disagree the ready one wins, as in
// kube-proxy, so the endpoint never flaps out while it moves.
func endpointsOf(eps []*endpointSlice, portName string, f family.Family) []Endpoint {
	type key struct {
		addr netip.Addr
		port uint16
	}
	seen := map[key]Endpoint{}
	// Slice order only matters for ties between non-ready copies; sort for determinism.
	eps = slices.SortedFunc(slices.Values(eps), func(a, b *endpointSlice) int {
		return cmp.Compare(a.Name, b.Name)
	})
	for _, s := range eps {
		if s.addressType != sliceType(f) {
			continue
		}
		port, ok := slicePort(s.ports, portName)
		if !ok {
			continue
		}
		for _, e := range s.endpoints {
			ep := Endpoint{
				Address:     e.address(),
				Port:        port,
				NodeName:    s.nodes.name(e.node),
				Ready:       e.flags&epReady != 0,
				Serving:     e.flags&epServing != 0,
				Terminating: e.flags&epTerminating != 0,
			}
			k := key{ep.Address, ep.Port}
			if old, dup := seen[k]; dup && (old.Ready || !ep.Ready) {
				continue
			}
			seen[k] = ep
		}
	}
	if len(seen) == 0 {
		return nil
	}
	out := make([]Endpoint, 0, len(seen)) // exact: snapshots hold these for long
	for _, e := range seen {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Endpoint) int {
		if c := a.Address.Compare(b.Address); c != 0 {
			return c
		}
		return cmp.Compare(a.Port, b.Port)
	})
	return out
}

// slicePort returns the number of a slice's port called name ("" for the unnamed port). A
// port without a number means "all ports" in the API; it gives ravel nothing to program.
func slicePort(ports []discoveryv1.EndpointPort, name string) (uint16, bool) {
	for _, p := range ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		if pn != name || p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
			continue
		}
		return uint16(*p.Port), true
	}
	return 0, false
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// readyCount counts the ready endpoints of a state.
func readyCount(s ServiceState) int {
	n := 0
	for _, e := range s.Endpoints {
		if e.Ready {
			n++
		}
	}
	return n
}

// sameState reports whether two states would program the same thing.
func sameState(a, b ServiceState) bool {
	return a.Status == b.Status && slices.Equal(a.Endpoints, b.Endpoints)
}

// CompareRefs orders ServiceRefs by namespace, service, port name and family.
func CompareRefs(a, b ServiceRef) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Service, b.Service), cmp.Compare(a.PortName, b.PortName),
		cmp.Compare(a.Family, b.Family))
}
