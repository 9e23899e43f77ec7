package kubeobj

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EndpointSlice builds an EndpointSlice for Service svc, labelled the way the EndpointSlice
// controller labels its slices. Its address type is inferred from the first endpoint (IPv4 if
// there is none) unless WithAddressType is given.
func EndpointSlice(ns, svc, name string, opts ...EndpointSliceOption) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      name,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc,
				discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
			},
		},
	}
	for _, o := range opts {
		o.applyEndpointSlice(s)
	}
	if s.AddressType == "" {
		s.AddressType = discoveryv1.AddressTypeIPv4
		if len(s.Endpoints) > 0 && len(s.Endpoints[0].Addresses) > 0 {
			if a, err := netip.ParseAddr(s.Endpoints[0].Addresses[0]); err == nil && a.Is6() && !a.Is4In6() {
				s.AddressType = discoveryv1.AddressTypeIPv6
			}
		}
	}
	return s
}

// WithEndpoint adds an endpoint with one address. nodeName may be empty.
func WithEndpoint(ip, nodeName string, ready, serving, terminating bool) EndpointSliceOption {
	return sliceOption(func(s *discoveryv1.EndpointSlice) {
		r, sv, tm, node := ready, serving, terminating, nodeName // fresh pointers per slice
		ep := discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &r, Serving: &sv, Terminating: &tm},
		}
		if node != "" {
			ep.NodeName = &node
		}
		s.Endpoints = append(s.Endpoints, ep)
	})
}

// WithSlicePort adds a TCP port.
func WithSlicePort(name string, port int32) EndpointSliceOption {
	return WithSliceProtocolPort(name, corev1.ProtocolTCP, port)
}

// WithSliceProtocolPort adds a port with the given protocol.
func WithSliceProtocolPort(name string, proto corev1.Protocol, port int32) EndpointSliceOption {
	return sliceOption(func(s *discoveryv1.EndpointSlice) {
		n, pr, po := name, proto, port // fresh pointers per slice
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: &n, Protocol: &pr, Port: &po})
	})
}

// WithAddressType sets the slice's address type explicitly.
func WithAddressType(t discoveryv1.AddressType) EndpointSliceOption {
	return sliceOption(func(s *discoveryv1.EndpointSlice) { s.AddressType = t })
}
