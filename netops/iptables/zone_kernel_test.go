package iptables

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

func withZone(weight int, targets ...string) svcOpt {
	return func(s *netops.LocalService) {
		for _, t := range targets {
			s.Zone = append(s.Zone, netops.Target{Addr: netip.MustParseAddrPort(t), Weight: weight})
		}
	}
}

// zoneRulesets are rulesets with every rule form of the zone chains and the hairpin rules, in
// fam's table: director interfaces, service rules with and without a comment, addrtype, a
// masquerade-all zone service, weighted DNATs, hairpin -s rules (one per pod address), with
// masquerade off and on.
func zoneRulesets(fam family.Family) []chains.Ruleset {
	svcs := []netops.LocalService{
		makeService("default/web:http", "10.0.0.1:80", withEndpoints("10.244.1.2:8080", "10.244.1.2:8443", "10.244.1.3:8080")),
		makeService("", "10.0.0.2:80", withZone(3, "10.244.2.5:8080"), withZone(1, "10.244.3.5:8080")),
		makeService("static/ext:https", "10.0.0.3:443", withUDP(), withZone(1, "192.0.2.10:443", "192.0.2.11:0"),
			func(s *netops.LocalService) { s.ZoneMasquerade = true }),
		makeService("default/web:http", "[fd00::10]:80", withEndpoints("[fd00:1::2]:8080", "[fd00:1::3]:0")),
		makeService("", "[fd00::20]:80", withZone(3, "[fd00:2::5]:8080"), withZone(1, "[fd00:3::5]:8080")),
		makeService("static/ext:https", "[fd00::30]:443", withUDP(), withZone(1, "[2001:db8::10]:443", "[2001:db8::11]:0"),
			func(s *netops.LocalService) { s.ZoneMasquerade = true }),
	}
	tunnel := map[family.Family]string{family.IPv4: "tunl0", family.IPv6: "ip6tnl0"}[fam]
	var out []chains.Ruleset
	for _, masq := range []bool{false, true} {
		out = append(out, chains.Render(chains.Options{
			Chain: prefix, Masquerade: masq, Family: fam, DirectorInterfaces: []string{"eth0", tunnel, "veth+"},
		}, svcs))
	}
	return out
}

// TestKernelZoneRoundTrip: the zone and hairpin rules read back from iptables-save exactly as
// Render writes them (both backends, both families), so applying the same ruleset again is a
// no-op: an unchanged chain is never rewritten.
func TestKernelZoneRoundTrip(t *testing.T) {
	for _, fam := range family.All {
		t.Run(fam.String(), func(t *testing.T) {
			forFamilyModes(t, fam, func(t *testing.T, r *Real, ns string, h harness) {
				ctx := context.Background()
				for i, rs := range zoneRulesets(fam) {
					if _, err := r.Apply(ctx, rs); err != nil {
						t.Fatalf("ruleset %d: %v", i, err)
					}
					dumped, err := r.Dump(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if d := cmp.Diff(rs.String(), dumped); d != "" {
						t.Errorf("ruleset %d: iptables-save differs from Render (-render +kernel):\n%s", i, d)
					}
					p, err := r.Apply(ctx, rs)
					if err != nil {
						t.Fatal(err)
					}
					if !p.Empty() {
						t.Errorf("ruleset %d: second Apply changed things:\n%s", i, p)
					}
					if i == 0 {
						t.Logf("%s:\n%s", r.Mode(), mustOwned(h.save()))
					}
				}
				if err := r.Cleanup(ctx); err != nil {
					t.Fatal(err)
				}
				if o := mustOwned(h.save()); o != "" {
					t.Errorf("Cleanup left:\n%s", o)
				}
			})
		})
	}
}
