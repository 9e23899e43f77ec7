package kubeobj

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Service builds a ClusterIP Service with no selector (tests run without an EndpointSlice
// controller: write EndpointSlices with EndpointSlice).
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

// WithClusterIP asks for a specific ClusterIP (on a kapitest server it must be inside
// kapitest.ServiceCIDR).
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
