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
