package iptables

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ravel-lb/ravel/internal/golden"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

// harness is one nat table under test: the Fake, or the kernel's in a throwaway namespace.
// restore and save are raw iptables-restore --noflush / iptables-save -t nat, for seeding
// foreign rules and checking the table behind ravel's back. The Fake and the kernel compare
// with the same golden files: both must print the same text.
type harness struct {
	tables  Tables
	restore func(batch string) error
	save    func() string
}

var (
	web = makeService("default/web:http", "10.0.0.1:80", withEndpoints("10.244.1.2:8080", "10.244.1.3:8080", "10.244.1.4:8080"))
	dns = makeService("kube-system/dns:dns", "10.0.0.2:53", withUDP(), withEndpoints("10.244.1.9:5353"))
	// webLess is web with one endpoint gone.
	webLess = makeService("default/web:http", "10.0.0.1:80", withEndpoints("10.244.1.2:8080", "10.244.1.4:8080"))
)

func mustApply(t *testing.T, h harness, rs chains.Ruleset) chains.Patch {
	t.Helper()
	p, err := h.tables.Apply(context.Background(), rs)
	if err != nil {
		t.Fatalf("Apply: %v\npatch:\n%s", err, p)
	}
	return p
}

func owned(h harness) string   { o, _ := splitSave(h.save()); return o }
func foreign(h harness) string { _, f := splitSave(h.save()); return f }

// scenarioApply: apply, iptables-save shows exactly the golden chains; an endpoint removed
// rewrites only its service chain; a service removed rewrites the top chain and deletes its
// chain; applying again changes nothing and duplicates nothing.
func scenarioApply(t *testing.T, h harness) {
	p := mustApply(t, h, render(false, web, dns))
	if got := len(p.AddJumps); got != 3 {
		t.Errorf("first Apply added %d jumps, want 3 (PREROUTING, OUTPUT, POSTROUTING: the hairpin rules masquerade)", got)
	}
	first := owned(h)
	golden.Check(t, "apply-realserver", first)
	dumped, err := h.tables.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(render(false, web, dns).String(), dumped); d != "" {
		t.Errorf("Dump differs from the ruleset applied (-want +got):\n%s", d)
	}

	webChain := chains.ServiceChain(prefix, web.Key)
	p = mustApply(t, h, render(false, webLess, dns))
	if d := cmp.Diff([]string{webChain}, p.Changed()); d != "" {
		t.Errorf("endpoint removed: patch changed (-want +got):\n%s\n%s", d, p)
	}
	second := owned(h)
	if d := cmp.Diff([]string{webChain}, chainsChanged(first, second)); d != "" {
		t.Errorf("endpoint removed: iptables-save changed (-want +got):\n%s", d)
	}
	golden.Check(t, "apply-endpoint-removed", second)

	dnsChain := chains.ServiceChain(prefix, dns.Key)
	p = mustApply(t, h, render(false, webLess))
	if d := cmp.Diff([]string{prefix, dnsChain}, p.Changed()); d != "" {
		t.Errorf("service removed: patch changed (-want +got):\n%s", d)
	}
	third := owned(h)
	if strings.Contains(third, dnsChain) {
		t.Errorf("stale chain %s still there:\n%s", dnsChain, third)
	}

	for range 2 {
		if p := mustApply(t, h, render(false, webLess)); !p.Empty() {
			t.Errorf("Apply of the same ruleset changed things:\n%s", p)
		}
	}
	if got := owned(h); got != third {
		t.Errorf("Apply of the same ruleset changed iptables-save (-before +after):\n%s", cmp.Diff(third, got))
	}
	seen := map[string]bool{}
	for line := range strings.Lines(third) {
		if seen[line] {
			t.Errorf("duplicate line %q", line)
		}
		seen[line] = true
	}
}

// kubeProxy is a small but real kube-proxy nat table, plus a foreign chain that shares ravel's
// letters but not its prefix.
const kubeProxy = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]
:KUBE-SEP-AAAA - [0:0]
:RAVELX - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -j RAVELX
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-AAAA -s 10.244.0.5/32 -m comment --comment "kube-system/kube-dns:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-AAAA -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination 10.244.0.5:53
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 10.244.0.5:53" -j KUBE-SEP-AAAA
-A RAVELX -j RETURN
COMMIT
`

// scenarioForeign: kube-proxy's chains and jumps, and a chain named like ravel's without its
// prefix, are byte-identical in iptables-save after every Apply and after Cleanup; ravel's
// jump stays in front of KUBE-SERVICES, and is moved back there if kube-proxy re-prepends.
func scenarioForeign(t *testing.T, h harness) {
	if err := h.restore(kubeProxy); err != nil {
		t.Fatal(err)
	}
	before := foreign(h)
	check := func(step string) {
		t.Helper()
		if got := foreign(h); got != before {
			t.Errorf("%s changed foreign rules (-before +after):\n%s", step, cmp.Diff(before, got))
		}
	}
	mustApply(t, h, render(true, web, dns))
	check("Apply")
	assertFirst(t, h, "PREROUTING", "-j "+prefix)
	assertFirst(t, h, "OUTPUT", "-j "+prefix)
	mustApply(t, h, render(true, webLess, dns))
	check("Apply of a change")
	mustApply(t, h, render(false, webLess))
	check("Apply with masquerade off")

	// kube-proxy deletes and re-prepends its jump (as after its own restart on a wiped table).
	err := h.restore("*nat\n-D PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n" +
		"-I PREROUTING 1 -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\nCOMMIT\n")
	if err != nil {
		t.Fatal(err)
	}
	p := mustApply(t, h, render(false, webLess))
	if d := cmp.Diff([]chains.Jump{{From: "PREROUTING", Rule: "-j " + prefix}}, p.MoveJumps); d != "" {
		t.Errorf("MoveJumps (-want +got):\n%s", d)
	}
	assertFirst(t, h, "PREROUTING", "-j "+prefix)
	check("moving the jump")

	if err := h.tables.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("Cleanup")
	if o := owned(h); o != "" {
		t.Errorf("Cleanup left:\n%s", o)
	}
	if err := h.tables.Cleanup(context.Background()); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}

// assertFirst checks that rule is the first rule of the built-in chain.
func assertFirst(t *testing.T, h harness, chain, rule string) {
	t.Helper()
	for line := range strings.Lines(h.save()) {
		if strings.HasPrefix(line, "-A "+chain+" ") {
			if got := strings.TrimSpace(strings.TrimPrefix(line, "-A "+chain+" ")); got != rule {
				t.Errorf("first rule of %s is %q, want %q", chain, got, rule)
			}
			return
		}
	}
	t.Errorf("%s has no rules, want %q first", chain, rule)
}

// scenarioInUse: a foreign rule that jumps into a stale ravel chain makes Apply fail with
// ErrInUse, and the failed batch changes nothing (it is one transaction).
func scenarioInUse(t *testing.T, h harness) {
	mustApply(t, h, render(false, web, dns))
	dnsChain := chains.ServiceChain(prefix, dns.Key)
	if err := h.restore("*nat\n:KUBE-X - [0:0]\n-A KUBE-X -j " + dnsChain + "\nCOMMIT\n"); err != nil {
		t.Fatal(err)
	}
	before := h.save()
	_, err := h.tables.Apply(context.Background(), render(false, webLess))
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Apply with a foreign reference to a stale chain: err = %v, want ErrInUse", err)
	}
	t.Logf("Apply refused as it should: %v", err)
	if o, _ := splitSave(h.save()); o != mustOwned(before) {
		t.Errorf("failed batch changed the table (-before +after):\n%s", cmp.Diff(mustOwned(before), o))
	}
	if err := h.restore("*nat\n:KUBE-X - [0:0]\n-X KUBE-X\nCOMMIT\n"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, render(false, webLess))
}

func mustOwned(save string) string { o, _ := splitSave(save); return o }

// scenarioColocated: on a colocated director the top chain takes local/total of new
// connections (2 of 5 endpoints local: 0.4, stored by the kernel as 0.39999999991).
func scenarioColocated(t *testing.T, h harness) {
	mustApply(t, h, render(false,
		makeService("default/web:http", "10.0.0.1:80", withProbability(2.0/5), withEndpoints("10.244.0.2:8080", "10.244.0.3:8080")),
		makeService("default/api:grpc", "10.0.0.1:443", withProbability(1.0/3), withEndpoints("10.244.0.4:9443")),
		makeService("default/remote:http", "10.0.0.4:80", withProbability(0), withEndpoints("10.244.0.6:80")),
	))
	golden.Check(t, "apply-colocated", owned(h))
}

var scenarios = []struct {
	name string
	run  func(*testing.T, harness)
}{
	{"apply", scenarioApply},
	{"foreign", scenarioForeign},
	{"in-use", scenarioInUse},
	{"colocated", scenarioColocated},
}
