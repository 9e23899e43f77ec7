package main

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/netops"
)

// TestStandDownWait: a starting director waits for a realserver role to stand down only when
// one is active on the node, which an owned VIP bound outside node.vipInterface shows.
func TestStandDownWait(t *testing.T) {
	parse := func(vipInterface string) *configT {
		t.Helper()
		cfg, err := config.Parse("sd.yaml", []byte(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: d1, role: director, interface: eth0, vipInterface: `+vipInterface+`}
vipPool: [10.54.213.247, 10.54.213.248]
services:
  - {name: web, vip: 10.54.213.247, port: 80, backends: [{address: 10.0.1.5}]}
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	pfx := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	cases := []struct {
		name     string
		vipIface string
		setup    func(*netops.FakeLinks)
		wait     bool
		why      string
	}{
		{"nothing bound", "ravel0", func(*netops.FakeLinks) {}, false, "no VIP of the pool is bound outside ravel0"},
		{"the director's own VIPs from its last run", "ravel0", func(l *netops.FakeLinks) {
			l.AddDevice("ravel0", "dummy", true, pfx("10.54.213.247/32"), pfx("10.54.213.248/32"))
		}, false, "no VIP"},
		{"a foreign address on lo", "ravel0", func(l *netops.FakeLinks) {
			l.AddDevice("eth0", "veth", true, pfx("10.0.0.2/24"))
			_ = l.AddAddr("lo", pfx("127.0.0.2/32"))
		}, false, "no VIP"},
		{"an active realserver's VIP on lo", "ravel0", func(l *netops.FakeLinks) {
			l.AddDevice("ravel0", "dummy", true, pfx("10.54.213.247/32"))
			_ = l.AddAddr("lo", pfx("10.54.213.248/32"))
		}, true, "VIP 10.54.213.248 is bound on lo"},
		{"the director binds on lo itself", "lo", func(*netops.FakeLinks) {}, true, "node.vipInterface is lo"},
		{"the addresses cannot be listed", "ravel0", func(l *netops.FakeLinks) {
			l.FailNext("AddrDevices", errors.New("netlink: boom"))
		}, true, "cannot list the node's addresses: netlink: boom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			links := netops.NewFakeLinks()
			c.setup(links)
			wait, why := standDownWait(links, parse(c.vipIface))
			if (wait > 0) != c.wait || !strings.Contains(why, c.why) {
				t.Errorf("standDownWait = %v, %q; want wait %v, reason containing %q", wait, why, c.wait, c.why)
			}
			if c.wait && wait != coordinatorSettle {
				t.Errorf("wait = %v, want coordinatorSettle %v (a static config has no drain delay)", wait, coordinatorSettle)
			}
		})
	}
}
