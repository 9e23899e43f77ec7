package chains

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/golden"
	"github.com/ravel-lb/ravel/netops"
)

func TestRenderGolden(t *testing.T) {
	web := makeService("default/web:http", "10.0.0.1:80", withEndpoints("10.244.1.3:8080", "10.244.1.2:8080", "10.244.1.4:8080"))
	dns := makeService("kube-system/dns:dns", "10.0.0.2:53", withUDP(), withEndpoints("10.244.1.9:5353"))
	tests := []struct {
		name string
		opts Options
		svcs []netops.LocalService
	}{
		{"realserver", realserver, []netops.LocalService{web, dns}},
		{"colocated", realserver, []netops.LocalService{
			// 2 of 5 ready endpoints are on this director: it takes 2/5 of new connections.
			makeService("default/web:http", "10.0.0.1:80", withProbability(2.0/5), withEndpoints("10.244.0.2:8080", "10.244.0.3:8080")),
			makeService("default/api:grpc", "10.0.0.1:443", withProbability(1.0/3), withEndpoints("10.244.0.4:9443")),
			// every ready endpoint is local: an unconditional jump.
			makeService("default/solo:http", "10.0.0.3:80", withProbability(1), withEndpoints("10.244.0.5:80")),
			// none is local: no rule, no chain, IPVS takes it all.
			makeService("default/remote:http", "10.0.0.4:80", withProbability(0), withEndpoints("10.244.0.6:80")),
		}},
		{"masquerade", Options{Chain: "RAVEL", Masquerade: true}, []netops.LocalService{web, dns}},
		{"dedup", realserver, []netops.LocalService{
			makeService("default/web:http", "10.0.0.1:80", withEndpoints("10.244.1.2:8080", "10.244.1.2:8080", "[::ffff:10.244.1.3]:8080")),
			makeService("default/web:http", "10.0.0.1:80", withEndpoints("10.244.1.3:8080")),
			makeService("default/web-alias:http", "[::ffff:10.0.0.1]:80", withEndpoints("10.244.1.2:8080")),
			makeService("default/v6:http", "[fd00::1]:80", withEndpoints("[fd00::2]:80")),
			makeService("default/empty:http", "10.0.0.9:80"),
		}},
		{"empty", Options{Chain: "LB"}, nil},
		// The ip6tables table of the same node: its IPv6 services only, /128, endpoints in
		// brackets with their port, as ip6tables-save prints them (both backends, 1.8.9).
		{"ipv6", Options{Chain: "RAVEL", Masquerade: true, Family: family.IPv6}, []netops.LocalService{
			web,
			makeService("default/web:http", "[fd00::10]:80", withEndpoints("[fd00:1::3]:8080", "[fd00:1::2]:8080", "10.244.1.2:8080")),
			makeService("default/noport:http", "[fd00::11]:80", withEndpoints("[fd00:1::4]:0")),
		}},
		// In-zone rules: services without local endpoints send the node's own processes and
		// its pods to their zone targets, by weight; what arrives on a director interface
		// returns to the top chain and falls through, as before.
		{"zone", Options{Chain: "RAVEL", DirectorInterfaces: []string{"eth0", "tunl0", "eth0"}}, []netops.LocalService{
			// local endpoints: the endpoint chain, with one hairpin rule per pod address
			makeService("default/web:http", "10.0.0.1:80", withEndpoints("10.244.1.3:8080", "10.244.1.2:8080", "10.244.1.2:8443")),
			// ready endpoints on other nodes only, whatever the share of the director's traffic
			makeService("default/api:http", "10.0.0.2:80", withProbability(0), withZone("10.244.3.5:8080/1", "10.244.2.5:8080/3")),
			// a static service: listed twice, the same backend with two weights (the largest
			// kept), masquerade asked by one; the IPv6 backend belongs in ip6tables' table
			makeService("static/ext:https", "10.0.0.3:443", withZone("192.0.2.10:443/1", "[2001:db8::1]:443/1")),
			makeService("static/ext-alias:https", "10.0.0.3:443", withZoneMasquerade(), withZone("192.0.2.10:443/2", "192.0.2.11:443/1")),
			// every target drained: nothing
			makeService("default/drained:http", "10.0.0.4:80", withZone("10.244.2.6:8080/0")),
			// local endpoints win: the zone targets are not used
			makeService("default/both:http", "10.0.0.5:80", withEndpoints("10.244.1.4:80"), withZone("10.244.2.7:80/1")),
		}},
		// Only a zone service: no service chain, but the masquerade chains (masquerade off);
		// a director interface listed twice is one rule.
		{"zone-only", Options{Chain: "RAVEL", DirectorInterfaces: []string{"eth0", "eth0"}}, []netops.LocalService{
			makeService("default/api:http", "10.0.0.2:80", withZone("10.244.2.5:8080/1")),
		}},
		{"zone-ipv6", Options{Chain: "RAVEL", Family: family.IPv6, DirectorInterfaces: []string{"eth0", "ip6tnl0"}}, []netops.LocalService{
			makeService("default/api:http", "[fd00::20]:80", withZone("[fd00:2::5]:8080/1", "10.244.2.5:8080/1", "[fd00:3::5]:8080/2")),
			makeService("default/web:http", "[fd00::10]:80", withEndpoints("[fd00:1::2]:8080")),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); err != nil {
				t.Fatal(err)
			}
			rs := Render(tt.opts, tt.svcs)
			golden.Check(t, "render-"+tt.name, rs.String())
			// What Render says must read back identically from iptables-save text.
			if d := cmp.Diff(rs, Parse(tt.opts.Chain, rs.String())); d != "" {
				t.Errorf("Parse(Render().String()) differs (-render +parse):\n%s", d)
			}
		})
	}
}

// TestRenderZoneWeights: zone targets take their weight's share: target i of n matches with
// w_i/(w_i+...+w_n) of what is left, the last one always.
func TestRenderZoneWeights(t *testing.T) {
	key := makeService("", "10.0.0.2:80").Key
	rules := func(targets ...string) []string {
		rs := Render(realserver, []netops.LocalService{makeService("api", "10.0.0.2:80", withZone(targets...))})
		c, ok := rs.Chain(ZoneServiceChain("RAVEL", key))
		if !ok {
			t.Fatalf("no zone service chain in\n%s", rs)
		}
		return c.Rules
	}
	want := []string{
		"-m addrtype --src-type LOCAL -j RAVEL-MASQ",
		"-p tcp -m statistic --mode random --probability 0.75000000000 -j DNAT --to-destination 10.244.2.5:8080",
		"-p tcp -j DNAT --to-destination 10.244.3.5:8080",
	}
	if d := cmp.Diff(want, rules("10.244.2.5:8080/3", "10.244.3.5:8080/1")); d != "" {
		t.Errorf("weights 3,1 (-want +got):\n%s", d)
	}
	var b strings.Builder
	for _, ws := range [][]int{{1}, {1, 1, 1}, {3, 1}, {1, 3}, {1, 2, 3, 4}, {65535, 1}} {
		var targets []string
		for i, w := range ws {
			targets = append(targets, fmt.Sprintf("10.244.%d.5:8080/%d", i+1, w))
		}
		fmt.Fprintf(&b, "# weights %v\n%s\n", ws, strings.Join(dnats(rules(targets...)), "\n"))
	}
	golden.Check(t, "zone-weights", b.String())
}

func TestRenderProbabilities(t *testing.T) {
	var b strings.Builder
	for _, n := range []int{1, 2, 3, 5} {
		var eps []string
		for i := range n {
			eps = append(eps, fmt.Sprintf("10.244.0.%d:80", i+1))
		}
		rs := Render(realserver, []netops.LocalService{makeService(fmt.Sprintf("n=%d", n), "10.0.0.1:80", withEndpoints(eps...))})
		c, _ := rs.Chain(ServiceChain("RAVEL", makeService("", "10.0.0.1:80").Key))
		fmt.Fprintf(&b, "# n=%d\n%s", n, strings.Join(dnats(c.Rules), "\n")+"\n")
	}
	golden.Check(t, "probabilities", b.String())
}

// dnats keeps the DNAT rules of a chain (leaving out the hairpin and masquerade rules).
func dnats(rules []string) []string {
	var out []string
	for _, r := range rules {
		if strings.Contains(r, " -j DNAT ") {
			out = append(out, r)
		}
	}
	return out
}

func TestProbability(t *testing.T) {
	for _, tt := range []struct {
		p    float64
		want string
	}{
		{1.0 / 2, "0.50000000000"},
		{1.0 / 3, "0.33333333349"}, // lround(2^31/3) = 715827883
		{1.0 / 4, "0.25000000000"},
		{1.0 / 5, "0.20000000019"},
		{2.0 / 5, "0.39999999991"}, // 858993459 / 2^31
		{0, "0.00000000000"},
		{-1, "0.00000000000"},
		{7, "1.00000000000"},
	} {
		if got := Probability(tt.p); got != tt.want {
			t.Errorf("Probability(%v) = %s, want %s", tt.p, got, tt.want)
		}
	}
}

func TestSaveString(t *testing.T) {
	for in, want := range map[string]string{
		"web":              " web",
		"kube-system_dns1": " kube-system_dns1",
		"default/web:http": ` "default/web:http"`,
		"a b":              ` "a b"`,
	} {
		if got := saveString(in); got != want {
			t.Errorf("saveString(%q) = %q, want %q", in, got, want)
		}
	}
	if got := comment("a\"b\\c\nd"); got != "a_b_c_d" {
		t.Errorf("comment sanitized to %q", got)
	}
	if got := comment(strings.Repeat("x", 300)); len(got) != maxComment {
		t.Errorf("comment not cut to %d bytes: %d", maxComment, len(got))
	}
}

func TestServiceChainStable(t *testing.T) {
	k := makeService("", "10.0.0.1:80").Key
	// The name must never change across releases: running nodes would see every chain as stale.
	if got, want := ServiceChain("RAVEL", k), "RAVEL-SVC-"+ServiceChain("", k)[len("-SVC-"):]; got != want {
		t.Errorf("ServiceChain = %q, want %q", got, want)
	}
	golden.Check(t, "service-chain-names", fmt.Sprintf("%s\n%s\n%s\n",
		ServiceChain("RAVEL", k),
		ServiceChain("RAVEL", makeService("", "10.0.0.1:80", withUDP()).Key),
		ServiceChain("RAVEL", makeService("", "10.0.0.1:81").Key)))
	if n := len(ServiceChain(strings.Repeat("X", MaxPrefixLen), k)); n != MaxChainLen {
		t.Errorf("longest service chain is %d characters, want %d", n, MaxChainLen)
	}
	if got, want := ZoneServiceChain("RAVEL", k), "RAVEL-ZSV-"+k.Hash(); got != want {
		t.Errorf("ZoneServiceChain = %q, want %q", got, want)
	}
	for _, c := range []string{ZoneServiceChain(strings.Repeat("X", MaxPrefixLen), k), ZoneChain(strings.Repeat("X", MaxPrefixLen))} {
		if len(c) > MaxChainLen {
			t.Errorf("%s is %d characters, longer than %d", c, len(c), MaxChainLen)
		}
	}
}
