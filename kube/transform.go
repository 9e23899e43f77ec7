package kube

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// The caches keep only what resolve.go reads. A Node object as a kubelet writes it carries
// managedFields, its image list (often tens of KB), volumes, daemon endpoints and every
// condition's message; an EndpointSlice carries a targetRef, hints and zone per endpoint. The
// transforms copy the few fields ravel uses into fresh objects so the originals can be freed.
// They are idempotent (a transformed object transforms to an equal one), because the reflector
// may apply them to objects that already went through them.

// nodeTransform keeps the name, the labels named by the selector, spec.unschedulable, the
// InternalIP/ExternalIP addresses and the Ready condition's status.
func nodeTransform(selector map[string]string) func(any) (any, error) {
	return func(obj any) (any, error) {
		n, ok := obj.(*corev1.Node)
		if !ok {
			return obj, nil
		}
		out := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion},
			Spec:       corev1.NodeSpec{Unschedulable: n.Spec.Unschedulable},
		}
		for k := range selector {
			if v, ok := n.Labels[k]; ok {
				if out.Labels == nil {
					out.Labels = make(map[string]string, len(selector))
				}
				out.Labels[k] = v
			}
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				out.Status.Addresses = append(out.Status.Addresses, a)
			}
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				out.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
				break
			}
		}
		return out, nil
	}
}

// serviceTransform keeps the type, clusterIP, externalName and the ports' names, numbers and
// protocols.
func serviceTransform(obj any) (any, error) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return obj, nil
	}
	out := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion},
		Spec: corev1.ServiceSpec{
			Type:         s.Spec.Type,
			ClusterIP:    s.Spec.ClusterIP,
			ExternalName: s.Spec.ExternalName,
		},
	}
	if len(s.Spec.Ports) > 0 {
		out.Spec.Ports = make([]corev1.ServicePort, len(s.Spec.Ports))
		for i, p := range s.Spec.Ports {
			out.Spec.Ports[i] = corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port}
		}
	}
	return out, nil
}

// sliceTransformer returns the EndpointSlice transform of one reflector: an endpointSlice
// (slice.go), whose node names are interned in a table of the reflector's own.
func sliceTransformer() cache.TransformFunc {
	nodes := newNodeNames()
	return func(obj any) (any, error) {
		if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
			return keepSlice(s, nodes), nil
		}
		return obj, nil // an endpointSlice already (the transform is idempotent), or a tombstone
	}
}

// sliceTransform is a transform with its own interning, for tests.
func sliceTransform(obj any) (any, error) { return sliceTransformer()(obj) }
