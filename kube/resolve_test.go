package kube

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/kubeobj"
)

func ep(addr, node string, port uint16, ready bool) Endpoint {
	return Endpoint{Address: netip.MustParseAddr(addr), NodeName: node, Port: port, Ready: ready, Serving: ready}
}

func TestResolveService(t *testing.T) {
	const ns = "ns"
	web := kubeobj.Service(ns, "web", kubeobj.WithPort("http", 80, 8080), kubeobj.WithPort("https", 443, 8443))
	unnamed := kubeobj.Service(ns, "one", kubeobj.WithPort("", 80, 8080))
	namedOne := kubeobj.Service(ns, "one", kubeobj.WithPort("http", 80, 8080))
	sliceA := kubeobj.EndpointSlice(ns, "web", "web-a",
		kubeobj.WithSlicePort("http", 8080), kubeobj.WithSlicePort("https", 8443),
		kubeobj.WithEndpoint("10.0.0.2", "n1", true, true, false),
		kubeobj.WithEndpoint("10.0.0.1", "n2", true, true, false),
		kubeobj.WithEndpoint("10.0.0.3", "n1", false, true, true))
	// web-b lists 10.0.0.3 again, ready this time (mid-move), and a new endpoint on another
	// target port number for the same port name.
	sliceB := kubeobj.EndpointSlice(ns, "web", "web-b",
		kubeobj.WithSlicePort("http", 9090),
		kubeobj.WithEndpoint("10.0.0.3", "n1", true, true, false),
		kubeobj.WithEndpoint("10.0.0.4", "", true, true, false))
	sliceB.Endpoints[0].Addresses = []string{"10.0.0.3"}
	v6 := kubeobj.EndpointSlice(ns, "web", "web-v6", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("2001:db8::1", "n1", true, true, false))
	notReady := kubeobj.EndpointSlice(ns, "web", "web-nr", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.0.0.9", "n3", false, false, true))
	// Conditions left nil: ready and serving mean true, terminating false (API docs).
	nilConds := kubeobj.EndpointSlice(ns, "one", "one-a", kubeobj.WithSlicePort("", 8080))
	nilConds.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.1"}}}
	noPortNumber := kubeobj.EndpointSlice(ns, "web", "web-np", kubeobj.WithEndpoint("10.0.0.8", "n1", true, true, false))
	noPortNumber.Ports = []discoveryv1.EndpointPort{{Name: ptr("http")}}

	tests := []struct {
		name     string
		svc      *corev1.Service
		slices   []*discoveryv1.EndpointSlice
		portName string
		fam      family.Family // IPv4 when 0
		want     ServiceState
	}{
		{name: "missing service", portName: "http", slices: []*discoveryv1.EndpointSlice{sliceA},
			want: ServiceState{Status: StatusNotFound}},
		{name: "external name", svc: kubeobj.Service(ns, "x", kubeobj.ExternalName("db.example.com")),
			want: ServiceState{Status: StatusExternalName}},
		{name: "headless", svc: kubeobj.Service(ns, "h", kubeobj.Headless(), kubeobj.WithPort("http", 80, 80)),
			portName: "http", slices: []*discoveryv1.EndpointSlice{sliceA}, want: ServiceState{Status: StatusHeadless}},
		{name: "no such port", svc: web, portName: "grpc", slices: []*discoveryv1.EndpointSlice{sliceA},
			want: ServiceState{Status: StatusNoSuchPort}},
		{name: "empty port name needs a single unnamed port", svc: web, portName: "",
			want: ServiceState{Status: StatusNoSuchPort}},
		{name: "empty port name against a single named port", svc: namedOne, portName: "",
			want: ServiceState{Status: StatusNoSuchPort}},
		{name: "no slices", svc: web, portName: "http", want: ServiceState{Status: StatusNoEndpoints}},
		{name: "only non-ready endpoints", svc: web, portName: "http", slices: []*discoveryv1.EndpointSlice{notReady},
			want: ServiceState{Status: StatusNoEndpoints, Endpoints: []Endpoint{
				{Address: netip.MustParseAddr("10.0.0.9"), NodeName: "n3", Port: 8080, Terminating: true},
			}}},
		{name: "one slice, sorted", svc: web, portName: "http", slices: []*discoveryv1.EndpointSlice{sliceA},
			want: ServiceState{Status: StatusOK, Endpoints: []Endpoint{
				ep("10.0.0.1", "n2", 8080, true), ep("10.0.0.2", "n1", 8080, true),
				{Address: netip.MustParseAddr("10.0.0.3"), NodeName: "n1", Port: 8080, Serving: true, Terminating: true},
			}}},
		{name: "second port by name", svc: web, portName: "https", slices: []*discoveryv1.EndpointSlice{sliceA, sliceB},
			want: ServiceState{Status: StatusOK, Endpoints: []Endpoint{
				ep("10.0.0.1", "n2", 8443, true), ep("10.0.0.2", "n1", 8443, true),
				{Address: netip.MustParseAddr("10.0.0.3"), NodeName: "n1", Port: 8443, Serving: true, Terminating: true},
			}}},
		{name: "two slices, IPv6 and portless ignored, different target ports kept apart",
			svc: web, portName: "http", slices: []*discoveryv1.EndpointSlice{sliceB, v6, sliceA, noPortNumber},
			want: ServiceState{Status: StatusOK, Endpoints: []Endpoint{
				ep("10.0.0.1", "n2", 8080, true), ep("10.0.0.2", "n1", 8080, true),
				{Address: netip.MustParseAddr("10.0.0.3"), NodeName: "n1", Port: 8080, Serving: true, Terminating: true},
				ep("10.0.0.3", "n1", 9090, true), ep("10.0.0.4", "", 9090, true),
			}}},
		{name: "an IPv6 ref reads the IPv6 slices only", fam: family.IPv6,
			svc: web, portName: "http", slices: []*discoveryv1.EndpointSlice{sliceB, v6, sliceA, noPortNumber},
			want: ServiceState{Status: StatusOK, Endpoints: []Endpoint{ep("2001:db8::1", "n1", 8080, true)}}},
		{name: "an IPv6 ref without IPv6 slices has no endpoints", fam: family.IPv6,
			svc: web, portName: "http", slices: []*discoveryv1.EndpointSlice{sliceA},
			want: ServiceState{Status: StatusNoEndpoints}},
		{name: "unnamed port, nil conditions", svc: unnamed, portName: "", slices: []*discoveryv1.EndpointSlice{nilConds},
			want: ServiceState{Status: StatusOK, Endpoints: []Endpoint{ep("10.1.0.1", "", 8080, true)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fam := tt.fam
			if fam == 0 {
				fam = family.IPv4
			}
			got, detail := resolveService(tt.svc, kept(tt.slices...), tt.portName, fam)
			if diff := cmp.Diff(tt.want, got, addrCmp); diff != "" {
				t.Errorf("resolveService (-want +got):\n%s", diff)
			}
			if (got.Status == StatusOK) != (detail == "") {
				t.Errorf("detail %q for status %s", detail, got.Status)
			}
			// The Service transform must not change the outcome, and a slice transformed twice
			// is the same.
			var ts *corev1.Service
			if tt.svc != nil {
				o, _ := serviceTransform(tt.svc)
				ts = o.(*corev1.Service)
			}
			tsl := kept(tt.slices...)
			for i, s := range tsl {
				if o, _ := sliceTransform(s); o != any(tsl[i]) {
					t.Errorf("slice transform of a transformed slice: %T", o)
				}
			}
			got2, _ := resolveService(ts, tsl, tt.portName, fam)
			if diff := cmp.Diff(got, got2, addrCmp); diff != "" {
				t.Errorf("after transform (-before +after):\n%s", diff)
			}
		})
	}
}

func TestDuplicateEndpointPrefersReady(t *testing.T) {
	svc := kubeobj.Service("ns", "web", kubeobj.WithPort("http", 80, 8080))
	a := kubeobj.EndpointSlice("ns", "web", "a", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.0.0.1", "n1", false, false, true))
	b := kubeobj.EndpointSlice("ns", "web", "b", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.0.0.1", "n1", true, true, false))
	want := ServiceState{Status: StatusOK, Endpoints: []Endpoint{ep("10.0.0.1", "n1", 8080, true)}}
	for _, order := range [][]*discoveryv1.EndpointSlice{{a, b}, {b, a}} {
		got, _ := resolveService(svc, kept(order...), "http", family.IPv4)
		if diff := cmp.Diff(want, got, addrCmp); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestNodeFromAPI(t *testing.T) {
	sel := map[string]string{"ravel/lb": "true"}
	lb := kubeobj.WithLabels(map[string]string{"ravel/lb": "true"})
	tests := []struct {
		name     string
		node     *corev1.Node
		selector map[string]string
		want     Node
	}{
		{name: "ready and selected", selector: sel,
			node: kubeobj.Node("n1", lb, kubeobj.WithNodeIP("192.0.2.1"), kubeobj.Ready(true)),
			want: Node{Name: "n1", Address: netip.MustParseAddr("192.0.2.1"), Ready: true, Selected: true}},
		{name: "empty selector selects all",
			node: kubeobj.Node("n1", kubeobj.WithNodeIP("192.0.2.1"), kubeobj.Ready(true)),
			want: Node{Name: "n1", Address: netip.MustParseAddr("192.0.2.1"), Ready: true, Selected: true}},
		{name: "label value differs", selector: sel,
			node: kubeobj.Node("n1", kubeobj.WithLabels(map[string]string{"ravel/lb": "false"}), kubeobj.WithNodeIP("192.0.2.1"), kubeobj.Ready(true)),
			want: Node{Name: "n1", Address: netip.MustParseAddr("192.0.2.1"), Ready: true}},
		{name: "first InternalIP wins over ExternalIP and hostname",
			node: kubeobj.Node("n1", kubeobj.WithNodeAddress(corev1.NodeHostName, "n1"),
				kubeobj.WithNodeAddress(corev1.NodeExternalIP, "198.51.100.1"),
				kubeobj.WithNodeIP("192.0.2.1"), kubeobj.WithNodeIP("192.0.2.2"), kubeobj.Ready(false)),
			want: Node{Name: "n1", Address: netip.MustParseAddr("192.0.2.1"), Selected: true}},
		{name: "dual stack, IPv6 listed first: one address per family",
			node: kubeobj.Node("n1", kubeobj.WithNodeIP("2001:db8::1"), kubeobj.WithNodeIP("192.0.2.7"),
				kubeobj.WithNodeIP("2001:db8::2"), kubeobj.Ready(true)),
			want: Node{Name: "n1", Address: netip.MustParseAddr("192.0.2.7"), Address6: netip.MustParseAddr("2001:db8::1"), Ready: true, Selected: true}},
		{name: "IPv6 only: no IPv4 address",
			node: kubeobj.Node("n1", kubeobj.WithNodeIP("2001:db8::1"), kubeobj.Ready(true)),
			want: Node{Name: "n1", Address6: netip.MustParseAddr("2001:db8::1"), Ready: true, Selected: true}},
		{name: "a zone or a mapped spelling",
			node: kubeobj.Node("n1", kubeobj.WithNodeIP("fe80::1%eth0"), kubeobj.WithNodeIP("::ffff:192.0.2.9"), kubeobj.Ready(true)),
			want: Node{Name: "n1", Address: netip.MustParseAddr("192.0.2.9"), Ready: true, Selected: true}},
		{name: "ExternalIP when no InternalIP",
			node: kubeobj.Node("n1", kubeobj.WithNodeAddress(corev1.NodeExternalIP, "198.51.100.1"), kubeobj.Unschedulable()),
			want: Node{Name: "n1", Address: netip.MustParseAddr("198.51.100.1"), Cordoned: true, Selected: true}},
		{name: "no address, unknown readiness",
			node: func() *corev1.Node {
				n := kubeobj.Node("n1")
				n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}
				return n
			}(),
			want: Node{Name: "n1", Selected: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nodeFromAPI(tt.node, tt.selector)
			if diff := cmp.Diff(tt.want, got, addrCmp); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			o, _ := nodeTransform(tt.selector)(tt.node)
			if got2 := nodeFromAPI(o.(*corev1.Node), tt.selector); got2 != got {
				t.Errorf("after transform: %+v, before %+v", got2, got)
			}
		})
	}
}

func TestTransformsStripAndAreIdempotent(t *testing.T) {
	n := kubeobj.Node("n1", kubeobj.WithLabels(map[string]string{"ravel/lb": "true", "big": "x"}),
		kubeobj.WithNodeIP("192.0.2.1"), kubeobj.WithNodeAddress(corev1.NodeHostName, "n1"), kubeobj.Ready(true),
		kubeobj.WithAnnotations(map[string]string{"a": "b"}))
	n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"registry/image:tag"}, SizeBytes: 1}}
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse})
	tr := nodeTransform(map[string]string{"ravel/lb": "true"})
	o1, _ := tr(n)
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"ravel/lb": "true"}},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	if diff := cmp.Diff(want, o1); diff != "" {
		t.Errorf("node transform (-want +got):\n%s", diff)
	}
	o2, _ := tr(o1)
	if diff := cmp.Diff(o1, o2); diff != "" {
		t.Errorf("node transform not idempotent:\n%s", diff)
	}

	s := kubeobj.EndpointSlice("ns", "web", "a", kubeobj.WithSlicePort("http", 8080),
		kubeobj.WithEndpoint("10.0.0.1", "n1", true, true, false))
	s.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "controller"}}
	s.Endpoints[0].TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}
	s.Endpoints[0].Zone = ptr("z1")
	s1, _ := sliceTransform(s)
	got := s1.(*endpointSlice)
	if got.ManagedFields != nil || got.Labels != nil || got.service != "web" || got.Name != "a" || got.Namespace != "ns" ||
		len(got.endpoints) != 1 || got.nodes.name(got.endpoints[0].node) != "n1" || got.endpoints[0].address() != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("slice transform kept too much or too little: %+v", got)
	}
	if s2, _ := sliceTransform(s1); s2 != s1 {
		t.Errorf("slice transform not idempotent: %+v", s2)
	}
}

// kept is what an EndpointSlice cache keeps of slices (one node table, as one reflector's).
func kept(in ...*discoveryv1.EndpointSlice) []*endpointSlice {
	tr := sliceTransformer()
	out := make([]*endpointSlice, len(in))
	for i, s := range in {
		o, _ := tr(s)
		out[i] = o.(*endpointSlice)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// addrCmp lets cmp compare netip.Addr (unexported fields, no Equal method).
var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
