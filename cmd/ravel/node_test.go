package main

import (
	"net/netip"
	"testing"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/schema"
)

func TestCheckNodeAddrs(t *testing.T) {
	a := netip.MustParseAddr
	gw := a("10.54.213.1")
	for _, tc := range []struct {
		name    string
		gateway *netip.Addr
		addrs   []netip.Addr
		want    string
	}{
		{"no clash", &gw, []netip.Addr{a("10.54.213.10")}, ""},
		{"interface address", nil, []netip.Addr{a("10.54.213.10"), a("10.54.213.248")},
			"refusing to start: vipPool address 10.54.213.248 is an address of node.interface eth0: it cannot be a VIP"},
		{"gateway from a flag", ptr(a("10.54.213.247")), nil,
			"refusing to start: vipPool address 10.54.213.247 is the gateway 10.54.213.247: it cannot be a VIP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{ClusterConfig: schema.Default()}
			cfg.VIPPool = []netip.Addr{a("10.54.213.247"), a("10.54.213.248")}
			cfg.Node.Gateway = tc.gateway
			got := ""
			if err := checkNodeAddrs(cfg, tc.addrs); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("checkNodeAddrs = %q, want %q", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestDefaultNodeNameIsLowercase: kubelet registers a node under its hostname lowercased, so a
// mixed-case hostname taken as it is would match no node of the snapshot.
func TestDefaultNodeNameIsLowercase(t *testing.T) {
	old := hostname
	t.Cleanup(func() { hostname = old })
	hostname = func() (string, error) { return "Worker-1.Example.COM", nil }
	cfg := &config.Config{ClusterConfig: schema.Default()}
	node, err := (&nodeFlags{}).apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if node.Name != "worker-1.example.com" || cfg.Node.Name != node.Name {
		t.Errorf("node name %q (config %q), want worker-1.example.com", node.Name, cfg.Node.Name)
	}
	// A name set in the config or by --node-name is used as written.
	cfg.Node.Name = "Explicit"
	if node, _ := (&nodeFlags{}).apply(cfg); node.Name != "Explicit" {
		t.Errorf("explicit node name became %q", node.Name)
	}
}
