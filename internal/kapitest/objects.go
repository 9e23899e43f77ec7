package kapitest

import (
	"context"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Builders for the objects ravel's Kubernetes integration tests create. They only build the
// object; create it with the client, e.g.
//
//	c.CoreV1().Nodes().Create(ctx, kapitest.Node("n1", kapitest.WithNodeIP("192.0.2.1"), kapitest.Ready(true)), metav1.CreateOptions{})
//
// Node status given to Create is kept by the API server (as for a registering kubelet); after
// that, status changes need UpdateStatus (see SetNodeReady).

// NodeOption changes a Node built by Node.
type NodeOption interface{ applyNode(*corev1.Node) }

// ServiceOption changes a Service built by Service.
type ServiceOption interface{ applyService(*corev1.Service) }

// EndpointSliceOption changes an EndpointSlice built by EndpointSlice.
type EndpointSliceOption interface {
	applyEndpointSlice(*discoveryv1.EndpointSlice)
}

// MetaOption changes the ObjectMeta of any object; it is a NodeOption, a ServiceOption and an
// EndpointSliceOption.
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

// Node builds a Node. Without options it has no addresses and no conditions (what a node looks
// like before its kubelet reports); use Ready to add the Ready condition.
func Node(name string, opts ...NodeOption) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{corev1.LabelHostname: name},
	}}
	for _, o := range opts {
		o.applyNode(n)
	}
	return n
}

// WithNodeIP adds an InternalIP address (call it twice for dual stack).
func WithNodeIP(ip string) NodeOption {
	return WithNodeAddress(corev1.NodeInternalIP, ip)
}

// WithNodeAddress adds a status address of any type (InternalIP, ExternalIP, Hostname, ...).
func WithNodeAddress(typ corev1.NodeAddressType, addr string) NodeOption {
	return nodeOption(func(n *corev1.Node) {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: typ, Address: addr})
	})
}

// Ready sets the node's Ready condition to True or False.
func Ready(ready bool) NodeOption {
	return nodeOption(func(n *corev1.Node) { setReadyCondition(n, ready, time.Now()) })
}

// Unschedulable sets spec.unschedulable (as `kubectl cordon` does).
func Unschedulable() NodeOption {
	return nodeOption(func(n *corev1.Node) { n.Spec.Unschedulable = true })
}

// WithTaint adds a taint to the node spec.
func WithTaint(key, value string, effect corev1.TaintEffect) NodeOption {
	return nodeOption(func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	})
}

// setReadyCondition sets (or adds) the Ready condition; it reports whether anything changed.
func setReadyCondition(n *corev1.Node, ready bool, now time.Time) bool {
	status, reason, msg := corev1.ConditionFalse, "KubeletNotReady", "set not ready by kapitest"
	if ready {
		status, reason, msg = corev1.ConditionTrue, "KubeletReady", "set ready by kapitest"
	}
	t := metav1.NewTime(now)
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		changed := c.Status != status
		if changed {
			c.LastTransitionTime = t
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = status, reason, msg, t
		return changed
	}
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{
		Type: corev1.NodeReady, Status: status, Reason: reason, Message: msg,
		LastHeartbeatTime: t, LastTransitionTime: t,
	})
	return true
}

// SetNodeReady sets the Ready condition of an existing node through UpdateStatus (there is no
// kubelet to do it), retrying on conflicts.
func SetNodeReady(ctx context.Context, client kubernetes.Interface, name string, ready bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		setReadyCondition(n, ready, time.Now())
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

// Service builds a ClusterIP Service with no selector (there is no EndpointSlice controller:
// write EndpointSlices with EndpointSlice).
func Service(ns, name string, opts ...ServiceOption) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP},
	}
	for _, o := range opts {
		o.applyService(s)
	}
	return s
}

// WithPort adds a TCP port.
func WithPort(name string, port, targetPort int32) ServiceOption {
	return WithProtocolPort(name, corev1.ProtocolTCP, port, targetPort)
}

// WithProtocolPort adds a port with the given protocol (TCP, UDP, SCTP).
func WithProtocolPort(name string, proto corev1.Protocol, port, targetPort int32) ServiceOption {
	return serviceOption(func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{
			Name: name, Protocol: proto, Port: port, TargetPort: intstr.FromInt32(targetPort),
		})
	})
}

// Headless sets clusterIP: None.
func Headless() ServiceOption {
	return serviceOption(func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeClusterIP
		s.Spec.ClusterIP = corev1.ClusterIPNone
	})
}

// ExternalName makes an ExternalName Service pointing at host.
func ExternalName(host string) ServiceOption {
	return serviceOption(func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeExternalName
		s.Spec.ExternalName = host
		s.Spec.ClusterIP = ""
	})
}

// WithType sets spec.type (e.g. LoadBalancer, NodePort).
func WithType(t corev1.ServiceType) ServiceOption {
	return serviceOption(func(s *corev1.Service) { s.Spec.Type = t })
}

// WithClusterIP asks for a specific ClusterIP (it must be inside ServiceCIDR).
func WithClusterIP(ip string) ServiceOption {
	return serviceOption(func(s *corev1.Service) { s.Spec.ClusterIP = ip })
}

// WithExternalIPs sets spec.externalIPs.
func WithExternalIPs(ips ...string) ServiceOption {
	return serviceOption(func(s *corev1.Service) { s.Spec.ExternalIPs = append(s.Spec.ExternalIPs, ips...) })
}

// WithSelector sets spec.selector (nothing acts on it here, but ravel may read it).
func WithSelector(sel map[string]string) ServiceOption {
	return serviceOption(func(s *corev1.Service) { s.Spec.Selector = sel })
}

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
