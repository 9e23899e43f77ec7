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

func TestRenderProbabilities(t *testing.T) {
	var b strings.Builder
	for _, n := range []int{1, 2, 3, 5} {
		var eps []string
		for i := range n {
			eps = append(eps, fmt.Sprintf("10.244.0.%d:80", i+1))
		}
		rs := Render(realserver, []netops.LocalService{makeService(fmt.Sprintf("n=%d", n), "10.0.0.1:80", withEndpoints(eps...))})
		c, _ := rs.Chain(ServiceChain("RAVEL", makeService("", "10.0.0.1:80").Key))
		fmt.Fprintf(&b, "# n=%d\n%s", n, strings.Join(c.Rules, "\n")+"\n")
	}
	golden.Check(t, "probabilities", b.String())
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
}
