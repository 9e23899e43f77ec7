package kubeobj

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestNodeBuilder(t *testing.T) {
	n := Node("n1", WithNodeIP("192.0.2.1"), WithNodeIP("2001:db8::1"), Ready(false),
		WithLabels(map[string]string{"a": "b"}), WithAnnotations(map[string]string{"x": "y"}))
	if n.Name != "n1" || n.Labels["a"] != "b" || n.Labels[corev1.LabelHostname] != "n1" || n.Annotations["x"] != "y" {
		t.Errorf("meta: %+v", n.ObjectMeta)
	}
	if len(n.Status.Addresses) != 2 || n.Status.Addresses[1].Type != corev1.NodeInternalIP {
		t.Errorf("addresses: %v", n.Status.Addresses)
	}
	if NodeReady(n) || len(n.Status.Conditions) != 1 || n.Spec.Unschedulable {
		t.Errorf("conditions %v unschedulable %v", n.Status.Conditions, n.Spec.Unschedulable)
	}
	if setReadyCondition(n, false, time.Now()) {
		t.Error("setReadyCondition(false) on a not-ready node reported a change")
	}
	if !setReadyCondition(n, true, time.Now()) || !NodeReady(n) || len(n.Status.Conditions) != 1 {
		t.Errorf("setReadyCondition(true): %v", n.Status.Conditions)
	}
	if NodeReady(Node("bare")) {
		t.Error("NodeReady of a node without conditions")
	}
}

func TestSetNodeReady(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset(Node("n1", Ready(true)))
	if err := SetNodeReady(ctx, c, "n1", false); err != nil {
		t.Fatal(err)
	}
	n, err := c.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if NodeReady(n) || len(n.Status.Conditions) != 1 {
		t.Errorf("after SetNodeReady(false): %v", n.Status.Conditions)
	}
	if err := SetNodeReady(ctx, c, "missing", true); err == nil {
		t.Error("SetNodeReady of a missing node: no error")
	}
}

func TestNamespaceBuilder(t *testing.T) {
	if ns := Namespace("bench"); ns.Name != "bench" || ns.GenerateName != "" {
		t.Errorf("named: %+v", ns.ObjectMeta)
	}
	ns := Namespace("", WithGenerateName("kubefeed-"), WithLabels(map[string]string{"a": "b"}))
	if ns.Name != "" || ns.GenerateName != "kubefeed-" || ns.Labels["a"] != "b" {
		t.Errorf("generated: %+v", ns.ObjectMeta)
	}
}

func TestServiceBuilder(t *testing.T) {
	s := Service("ns", "svc", WithPort("http", 80, 8080), WithProtocolPort("dns", corev1.ProtocolUDP, 53, 5353))
	if s.Namespace != "ns" || s.Spec.Type != corev1.ServiceTypeClusterIP || len(s.Spec.Ports) != 2 ||
		s.Spec.Ports[0].TargetPort.IntValue() != 8080 || s.Spec.Ports[1].Protocol != corev1.ProtocolUDP {
		t.Errorf("service: %+v", s.Spec)
	}
	if h := Service("ns", "h", Headless()); h.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("headless: %+v", h.Spec)
	}
	if e := Service("ns", "e", ExternalName("x.example")); e.Spec.Type != corev1.ServiceTypeExternalName || e.Spec.ExternalName != "x.example" {
		t.Errorf("externalname: %+v", e.Spec)
	}
}

func TestEndpointSliceBuilder(t *testing.T) {
	ep := WithEndpoint("10.0.0.1", "n1", true, true, false)
	a := EndpointSlice("ns", "svc", "svc-a", ep, WithSlicePort("http", 8080))
	b := EndpointSlice("ns", "svc", "svc-b", ep)
	*a.Endpoints[0].Conditions.Ready = false
	if !*b.Endpoints[0].Conditions.Ready {
		t.Error("slices built from the same option share condition pointers")
	}
	if a.AddressType != discoveryv1.AddressTypeIPv4 || a.Labels[discoveryv1.LabelServiceName] != "svc" ||
		*a.Endpoints[0].NodeName != "n1" || *a.Ports[0].Port != 8080 || *a.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("slice: %+v", a)
	}
	if v6 := EndpointSlice("ns", "svc", "v6", WithEndpoint("2001:db8::5", "", true, true, false)); v6.AddressType != discoveryv1.AddressTypeIPv6 || v6.Endpoints[0].NodeName != nil {
		t.Errorf("v6 slice: %+v", v6)
	}
}
