package kubeobj

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeOption changes a Node built by Node.
type NodeOption interface{ applyNode(*corev1.Node) }

// ServiceOption changes a Service built by Service.
type ServiceOption interface{ applyService(*corev1.Service) }

// EndpointSliceOption changes an EndpointSlice built by EndpointSlice.
type EndpointSliceOption interface {
	applyEndpointSlice(*discoveryv1.EndpointSlice)
}

// MetaOption changes the ObjectMeta of any object; it is a NodeOption, a ServiceOption and an
// EndpointSliceOption, and the option type of Namespace.
type MetaOption func(*metav1.ObjectMeta)

func (o MetaOption) applyNode(n *corev1.Node)                        { o(&n.ObjectMeta) }
func (o MetaOption) applyService(s *corev1.Service)                  { o(&s.ObjectMeta) }
func (o MetaOption) applyEndpointSlice(s *discoveryv1.EndpointSlice) { o(&s.ObjectMeta) }

type nodeOption func(*corev1.Node)

func (o nodeOption) applyNode(n *corev1.Node) { o(n) }

type serviceOption func(*corev1.Service)

func (o serviceOption) applyService(s *corev1.Service) { o(s) }

type sliceOption func(*discoveryv1.EndpointSlice)

func (o sliceOption) applyEndpointSlice(s *discoveryv1.EndpointSlice) { o(s) }

// WithLabels adds labels (to a Node, Service or EndpointSlice).
func WithLabels(labels map[string]string) MetaOption {
	return func(m *metav1.ObjectMeta) {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		for k, v := range labels {
			m.Labels[k] = v
		}
	}
}

// WithAnnotations adds annotations (to a Node, Service or EndpointSlice).
func WithAnnotations(annotations map[string]string) MetaOption {
	return func(m *metav1.ObjectMeta) {
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		for k, v := range annotations {
			m.Annotations[k] = v
		}
	}
}

// WithGenerateName sets metadata.generateName: the API server names the object prefix plus
// five random characters. Give the object an empty name, e.g. Namespace("",
// WithGenerateName("bench-")); a name given as well wins.
func WithGenerateName(prefix string) MetaOption {
	return func(m *metav1.ObjectMeta) { m.GenerateName = prefix }
}

// Namespace builds a Namespace.
func Namespace(name string, opts ...MetaOption) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, o := range opts {
		o(&ns.ObjectMeta)
	}
	return ns
}
