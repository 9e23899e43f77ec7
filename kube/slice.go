package kube

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ravel-lb/ravel/family"
)

// endpointSlice is what the EndpointSlice cache keeps of a slice: what resolve.go reads, in 24
// bytes per endpoint that hold no pointer (the API type takes about 130 with its strings and
// pointers, and the collector scans them all: at a million endpoints, 113 MB of the cache and
// 14 MB of address strings, against 24 MB). The transform builds it; nothing modifies it after.
type endpointSlice struct {
	metav1.TypeMeta
	metav1.ObjectMeta        // name, namespace, UID and resourceVersion only
	service           string // the kubernetes.io/service-name label
	addressType       discoveryv1.AddressType
	ports             []discoveryv1.EndpointPort
	endpoints         []sliceEndpoint
	nodes             *nodeNames // what sliceEndpoint.node indexes
}

// sliceEndpoint is an endpoint whose first address parsed in its slice's family.
type sliceEndpoint struct {
	addr  [16]byte // IPv4 as IPv4-mapped
	node  uint32   // index in the slice's nodeNames; 0 for none
	flags uint8
}

const (
	epReady uint8 = 1 << iota
	epServing
	epTerminating
	epIPv4
)

func (e sliceEndpoint) address() netip.Addr {
	a := netip.AddrFrom16(e.addr)
	if e.flags&epIPv4 != 0 {
		return a.Unmap()
	}
	return a
}

var _ runtime.Object = (*endpointSlice)(nil)

// DeepCopyObject implements runtime.Object.
func (s *endpointSlice) DeepCopyObject() runtime.Object {
	c := *s
	s.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.ports = make([]discoveryv1.EndpointPort, len(s.ports))
	for i := range s.ports {
		s.ports[i].DeepCopyInto(&c.ports[i])
	}
	c.endpoints = slices.Clone(s.endpoints)
	return &c
}

// nodeNames interns the node names of one cache's endpoints; an endpoint holds an index. It
// only grows (by the nodes the cluster ever had). Indexes are handed out under mu, and the
// table is replaced, never written, so a reader that sees a slice sees its names.
type nodeNames struct {
	mu    sync.Mutex
	index map[string]uint32
	names atomic.Pointer[[]string]
}

func newNodeNames() *nodeNames {
	t := &nodeNames{index: map[string]uint32{"": 0}}
	t.names.Store(&[]string{""})
	return t
}

func (t *nodeNames) id(name string) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[name]; ok {
		return i
	}
	old := *t.names.Load()
	names := append(slices.Clip(old), name)
	i := uint32(len(old))
	t.index[name] = i
	t.names.Store(&names)
	return i
}

func (t *nodeNames) name(i uint32) string { return (*t.names.Load())[i] }

// familyOfSlice is the family of an EndpointSlice addressType; 0 for FQDN and unknown types.
func familyOfSlice(t discoveryv1.AddressType) family.Family {
	switch t {
	case discoveryv1.AddressTypeIPv4:
		return family.IPv4
	case discoveryv1.AddressTypeIPv6:
		return family.IPv6
	}
	return 0
}

// keepSlice makes the endpointSlice of s. An endpoint without an address of the slice's family
// is left out (the API defines no meaning for addresses after the first, and kube-proxy ignores
// them); nil conditions are read as the API documents them (ready and serving true,
// terminating false).
func keepSlice(s *discoveryv1.EndpointSlice, nodes *nodeNames) *endpointSlice {
	out := &endpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion},
		service:     s.Labels[discoveryv1.LabelServiceName],
		addressType: s.AddressType,
		ports:       s.Ports,
		nodes:       nodes,
	}
	f := familyOfSlice(s.AddressType)
	n := 0
	for _, e := range s.Endpoints {
		if len(e.Addresses) > 0 {
			n++
		}
	}
	out.endpoints = make([]sliceEndpoint, 0, n)
	for _, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			continue
		}
		ip, ok := parseFamily(e.Addresses[0], f)
		if !ok {
			continue
		}
		se := sliceEndpoint{addr: ip.As16()}
		if ip.Is4() {
			se.flags |= epIPv4
		}
		if boolOr(e.Conditions.Ready, true) {
			se.flags |= epReady
		}
		if boolOr(e.Conditions.Serving, true) {
			se.flags |= epServing
		}
		if boolOr(e.Conditions.Terminating, false) {
			se.flags |= epTerminating
		}
		if e.NodeName != nil {
			se.node = nodes.id(*e.NodeName)
		}
		out.endpoints = append(out.endpoints, se)
	}
	return out
}
