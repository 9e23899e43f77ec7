package kube

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/schema"
)

// TestOptionsFromRefs: each service's target is followed in its VIP's family (a dual-stack
// Kubernetes service behind an IPv4 and an IPv6 VIP is two refs), and so is the management
// service's target, in each family of the pool; without that its state was never known and
// the director kept whatever the kernel had for it.
func TestOptionsFromRefs(t *testing.T) {
	web := &schema.KubeTarget{Namespace: "web", Service: "nginx", PortName: "http"}
	mgmt := &schema.KubeTarget{Namespace: "ops", Service: "health", PortName: "http"}
	v4, v6 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	c := schema.ClusterConfig{
		Kubernetes: &schema.Kubernetes{},
		VIPPool:    []netip.Addr{v4, netip.MustParseAddr("192.0.2.11"), v6},
		Services: []schema.Service{
			{VIP: v4, Port: 80, Kubernetes: web},
			{VIP: v6, Port: 80, Kubernetes: web},
			{VIP: v4, Port: 81, Backends: []schema.Backend{{Address: netip.MustParseAddr("192.0.2.50")}}},
		},
		Management: schema.Management{Port: 9999, Kubernetes: mgmt},
	}
	got := OptionsFrom(&c).Refs
	slices.SortFunc(got, CompareRefs)
	got = slices.Compact(got)
	want := []ServiceRef{
		{Namespace: "ops", Service: "health", PortName: "http", Family: family.IPv4},
		{Namespace: "ops", Service: "health", PortName: "http", Family: family.IPv6},
		{Namespace: "web", Service: "nginx", PortName: "http", Family: family.IPv4},
		{Namespace: "web", Service: "nginx", PortName: "http", Family: family.IPv6},
	}
	if !slices.Equal(got, want) {
		t.Errorf("refs:\n got %v\nwant %v", got, want)
	}
	c.Management.Port = 0
	if refs := OptionsFrom(&c).Refs; slices.ContainsFunc(refs, func(r ServiceRef) bool { return r.Service == "health" }) {
		t.Errorf("management off, its target still followed: %v", refs)
	}
}
