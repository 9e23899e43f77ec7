package nftables

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/ravel-lb/ravel/internal/golden"
	"github.com/ravel-lb/ravel/netops"
)

func key(vipPort string) netops.ServiceKey {
	ap := netip.MustParseAddrPort(vipPort)
	return netops.ServiceKey{VIP: ap.Addr(), Port: ap.Port(), Proto: netops.TCP}
}

func eps(s ...string) []netip.AddrPort {
	out := make([]netip.AddrPort, len(s))
	for i, e := range s {
		out[i] = netip.MustParseAddrPort(e)
	}
	return out
}

func local(name, vipPort string, endpoints ...string) netops.LocalService {
	return netops.LocalService{Name: name, Key: key(vipPort), Endpoints: eps(endpoints...), Probability: 1}
}

func zone(vipPort string, masq bool, targets ...netops.Target) netops.LocalService {
	return netops.LocalService{Key: key(vipPort), Zone: targets, ZoneMasquerade: masq}
}

func target(ap string, w int) netops.Target {
	return netops.Target{Addr: netip.MustParseAddrPort(ap), Weight: w}
}

var testOpts = Options{DirectorInterfaces: []string{"eth0", "tunl0", "ip6tnl0"}}

// goldenSet is one of everything: local services of both families, a colocated share, a
// weighted in-zone service, a static one, and two services sharing an endpoint.
func goldenSet() []netops.LocalService {
	colo := local("default/colo:http", "10.0.0.3:80", "10.1.0.7:8080", "10.1.0.8:8080")
	colo.Probability = 0.5
	return []netops.LocalService{
		local("default/web:http", "10.0.0.1:80", "10.1.0.6:8080", "10.1.0.5:8080"),
		local("default/web6:http", "[fd00::1]:80", "[fd01::5]:8080"),
		local("default/also:http", "10.0.0.2:443", "10.1.0.5:8080"),
		colo,
		zone("10.0.0.4:80", false, target("10.2.0.5:8080", 1), target("10.2.0.6:8080", 1), target("10.3.0.5:8080", 1)),
		zone("10.0.0.5:53", true, target("192.0.2.10:53", 3), target("192.0.2.11:53", 1), target("192.0.2.12:53", 0)),
	}
}

func TestRenderGolden(t *testing.T) {
	tb, fake := NewFake("")
	if _, err := tb.Apply(context.Background(), testOpts, goldenSet()); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "table", fake.Dump())
}

func TestRenderSpreadsExactly(t *testing.T) {
	rs := Render(Options{}, goldenSet())
	for name, want := range map[string]string{
		// two local endpoints of four: numbers 2 and 3 match nothing and fall through to IPVS
		"svc-" + key("10.0.0.3:80").Hash(): "numgen random mod 4 vmap { 0 : goto ep-",
		// weights 1:1:1
		"zone-" + key("10.0.0.4:80").Hash(): "numgen random mod 3 vmap { 0 : goto zep-",
		// weights 3:1, the weight-0 backend left out
		"zone-" + key("10.0.0.5:53").Hash(): "numgen random mod 4 vmap { 0-2 : goto zep-",
	} {
		rules := rs.Chains[name]
		if len(rules) == 0 || !strings.HasPrefix(rules[len(rules)-1], want) {
			t.Errorf("%s: rules %q, want the last to start with %q", name, rules, want)
		}
	}
	// With masquerade, a colocated director's service chain draws before anything marks a
	// packet: the connections that fall through to IPVS must leave unmarked.
	masq := Render(Options{Masquerade: true}, goldenSet())
	if colo := masq.Chains["svc-"+key("10.0.0.3:80").Hash()]; len(colo) != 1 || !strings.HasPrefix(colo[0], "numgen") {
		t.Errorf("colocated service chain %q: want the draw alone", colo)
	}
	ep := masq.Chains[epPrefix+endpointHash(netops.TCP, netip.MustParseAddrPort("10.1.0.7:8080"))]
	mark := "meta mark set meta mark | 0x2000"
	if want := []string{mark, "ip saddr 10.1.0.7 " + mark, "meta l4proto tcp dnat ip to 10.1.0.7:8080"}; !slices.Equal(ep, want) {
		t.Errorf("local endpoint chain %q, want %q", ep, want)
	}
	last := rs.Chains["zone-"+key("10.0.0.5:53").Hash()]
	if got := strings.Count(last[len(last)-1], "goto"); got != 2 {
		t.Errorf("static zone picks %d targets, want 2 (weight 0 left out): %q", got, last)
	}
	if first := rs.Chains["zone-"+key("10.0.0.5:53").Hash()][0]; first != "jump "+chainMarkMasq {
		t.Errorf("static zone service's first rule %q: pods must be masqueraded too", first)
	}
	if first := rs.Chains["zone-"+key("10.0.0.4:80").Hash()][0]; !strings.HasPrefix(first, "fib saddr type local") {
		t.Errorf("pod zone service's first rule %q: only the node's own connections are masqueraded", first)
	}
}

// TestApplySendsOnlyTheChange: one endpoint removed from one service of many is one chain
// flushed and rewritten and one endpoint chain deleted; nothing else is in the transaction.
func TestApplySendsOnlyTheChange(t *testing.T) {
	ctx := context.Background()
	tb, fake := NewFake("")
	set := goldenSet()
	for i := range 200 {
		set = append(set, local("bulk", netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 80).String(), "10.8.0.1:80", "10.8.0.2:80"))
	}
	c, err := tb.Apply(ctx, testOpts, set)
	if err != nil || !c.Full {
		t.Fatalf("first apply: %+v, %v (want a full write)", c, err)
	}
	if c, err := tb.Apply(ctx, testOpts, set); err != nil || !c.Empty() {
		t.Fatalf("same set again: %+v, %v (want nothing sent)", c, err)
	}
	set[0].Endpoints = eps("10.1.0.5:8080") // 10.1.0.6:8080 goes
	c, err = tb.Apply(ctx, testOpts, set)
	if err != nil {
		t.Fatal(err)
	}
	gone := epPrefix + endpointHash(netops.TCP, netip.MustParseAddrPort("10.1.0.6:8080"))
	want := []string{"svc-" + key("10.0.0.1:80").Hash(), gone}
	if c.Full || !slices.Equal(c.Chains, want) || c.Elements != 0 {
		t.Fatalf("change %+v, want chains %v and no element", c, want)
	}
	// flush + 1 rule for the service; flush + delete for the endpoint chain
	if c.Ops != 4 {
		t.Errorf("transaction of %d ops, want 4", c.Ops)
	}
	if fake.Table.Chains[gone] != nil {
		t.Errorf("%s still in the table", gone)
	}
	// A shared endpoint chain stays while another service uses it.
	set = slices.DeleteFunc(set, func(s netops.LocalService) bool { return s.Name == "default/also:http" })
	if _, err := tb.Apply(ctx, testOpts, set); err != nil {
		t.Fatal(err)
	}
	if shared := epPrefix + endpointHash(netops.TCP, netip.MustParseAddrPort("10.1.0.5:8080")); fake.Table.Chains[shared] == nil {
		t.Errorf("endpoint chain %s deleted while default/web still uses it", shared)
	}
	if fake.Table.Maps["services4"].FindElement("10.0.0.2", "tcp", "443") != nil {
		t.Error("removed service's element still in services4")
	}
	// The partial path ends where a full write of the same set ends.
	fresh, freshFake := NewFake("")
	if _, err := fresh.Apply(ctx, testOpts, set); err != nil {
		t.Fatal(err)
	}
	if got, want := fake.Dump(), freshFake.Dump(); got != want {
		t.Errorf("partial updates and a full write differ:\n%s", lineDiff(got, want))
	}
}

// TestFailedTransactionForgetsRecord: a refused transaction leaves the table as it was and the
// next Apply rewrites everything, so nothing is lost from what was committed.
func TestFailedTransactionForgetsRecord(t *testing.T) {
	ctx := context.Background()
	tb, fake := NewFake("")
	set := goldenSet()
	if _, err := tb.Apply(ctx, testOpts, set); err != nil {
		t.Fatal(err)
	}
	before := fake.Dump()
	// Someone deletes an endpoint chain's rule and the chain behind ravel's back; the partial
	// update that flushes it is refused by nft (no such chain) as a whole.
	victim := "svc-" + key("10.0.0.1:80").Hash()
	delete(fake.Table.Chains, victim)
	set[0].Endpoints = set[0].Endpoints[:1]
	if _, err := tb.Apply(ctx, testOpts, set); err == nil {
		t.Fatal("partial update of a chain that is gone succeeded")
	}
	if tb.record != nil {
		t.Fatal("record kept after a failed transaction")
	}
	c, err := tb.Apply(ctx, testOpts, set)
	if err != nil || !c.Full {
		t.Fatalf("next apply: %+v, %v (want a full rewrite)", c, err)
	}
	if fake.Table.Chains[victim] == nil {
		t.Fatalf("%s not rewritten", victim)
	}
	if fake.Dump() == before {
		t.Error("table unchanged after the endpoint removal")
	}
}

func TestResyncReportsAndRepairsDrift(t *testing.T) {
	ctx := context.Background()
	tb, fake := NewFake("")
	set := goldenSet()
	if _, err := tb.Apply(ctx, testOpts, set); err != nil {
		t.Fatal(err)
	}
	want := fake.Dump()
	d, _, err := tb.Resync(ctx, testOpts, set)
	if err != nil || !d.Empty() {
		t.Fatalf("resync of an untouched table: drift %v, %v", d, err)
	}
	// A hand-deleted element, an extra chain, and a rule added to a service chain.
	svc := "svc-" + key("10.0.0.1:80").Hash()
	tx := fake.NewTransaction()
	tx.Delete(&knftables.Element{Map: "services4", Key: []string{"10.0.0.2", "tcp", "443"}})
	tx.Add(&knftables.Chain{Name: "handmade"})
	tx.Add(&knftables.Rule{Chain: svc, Rule: "counter"})
	if err := fake.Run(ctx, tx); err != nil {
		t.Fatal(err)
	}
	d, c, err := tb.Resync(ctx, testOpts, set)
	if err != nil {
		t.Fatal(err)
	}
	// The extra rule is not reported (rules are not read back) but is repaired below.
	if !slices.Equal(d.Chains, []string{"handmade"}) || !slices.Equal(d.Elements, []string{"services4 10.0.0.2 . tcp . 443"}) {
		t.Errorf("drift %+v", d)
	}
	if !c.Full {
		t.Errorf("resync change %+v, want a full rewrite", c)
	}
	if got := fake.Dump(); got != want {
		t.Errorf("not repaired:\n%s", lineDiff(got, want))
	}
}

func TestCleanupDeletesTheTable(t *testing.T) {
	ctx := context.Background()
	tb, _ := NewFake("")
	if err := tb.Cleanup(ctx); err != nil {
		t.Fatalf("cleanup without a table: %v", err)
	}
	if _, err := tb.Apply(ctx, testOpts, goldenSet()); err != nil {
		t.Fatal(err)
	}
	if err := tb.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := tb.Dump(ctx); d != "" {
		t.Errorf("table left after cleanup:\n%s", d)
	}
	if c, err := tb.Apply(ctx, testOpts, goldenSet()); err != nil || !c.Full {
		t.Errorf("apply after cleanup: %+v, %v (want a full write)", c, err)
	}
}

// lineDiff lists the lines only in a (-) or only in b (+).
func lineDiff(a, b string) string {
	as, bs := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range as {
		if !slices.Contains(bs, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range bs {
		if !slices.Contains(as, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
