package kube

import (
	"sync"

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

// sliceTransformer returns the EndpointSlice transform of one reflector. It keeps the
// service-name label, the address type, the ports and, per endpoint, the first address, the
// conditions and the node name. What repeats across endpoints is shared: the condition
// pointers point at two package-level values and node names are interned, which saves about
// 50 bytes per endpoint. This is safe because nothing ever modifies a cached object.
func sliceTransformer() cache.TransformFunc {
	var mu sync.Mutex
	nodes := map[string]*string{}
	intern := func(p *string) *string {
		if p == nil {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if q, ok := nodes[*p]; ok {
			return q
		}
		nodes[*p] = p
		return p
	}
	return func(obj any) (any, error) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return obj, nil
		}
		out := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion},
			AddressType: s.AddressType,
			Ports:       s.Ports,
		}
		if v, ok := s.Labels[discoveryv1.LabelServiceName]; ok {
			out.Labels = map[string]string{discoveryv1.LabelServiceName: v}
		}
		if len(s.Endpoints) > 0 {
			out.Endpoints = make([]discoveryv1.Endpoint, len(s.Endpoints))
			for i, e := range s.Endpoints {
				oe := discoveryv1.Endpoint{
					Conditions: discoveryv1.EndpointConditions{
						Ready:       sharedBool(e.Conditions.Ready),
						Serving:     sharedBool(e.Conditions.Serving),
						Terminating: sharedBool(e.Conditions.Terminating),
					},
					NodeName: intern(e.NodeName),
				}
				if len(e.Addresses) > 0 {
					oe.Addresses = []string{e.Addresses[0]}
				}
				out.Endpoints[i] = oe
			}
		}
		return out, nil
	}
}

// sliceTransform is a transform with its own interning, for tests.
func sliceTransform(obj any) (any, error) { return sliceTransformer()(obj) }

var sharedTrue, sharedFalse = true, false

// sharedBool returns a pointer to a shared true or false (nil stays nil). Never write through it.
func sharedBool(p *bool) *bool {
	switch {
	case p == nil:
		return nil
	case *p:
		return &sharedTrue
	default:
		return &sharedFalse
	}
}
