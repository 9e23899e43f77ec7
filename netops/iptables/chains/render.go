package chains

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
)

// Render builds the desired chains for opts and svcs. opts must be valid (Options.Validate).
//
// Services with the same Key are merged (endpoints and zone targets united, names joined with
// ",", the largest Probability and zone weight kept, ZoneMasquerade if any says so); endpoints
// and zone targets are sorted and deduplicated. A service renders a rule in the top chain only
// with a Probability above 0 and at least one endpoint; a service without endpoints but with
// Zone targets of positive weight renders one in the zone chain instead (see zone.go). Only
// services, endpoints and targets of opts.Family are rendered: iptables and ip6tables are
// separate tables, one Ruleset each (an IPv4-mapped IPv6 address counts as IPv4).
func Render(opts Options, svcs []netops.LocalService) Ruleset {
	p := opts.Chain
	fam := opts.family()
	top := Chain{Name: p}
	zone := zoneChain(opts)
	zoned := 0 // services in the zone chain
	chains := []Chain{}
	for _, s := range netops.MergeLocal(svcs, fam) {
		switch {
		case len(s.Endpoints) > 0:
			if s.Probability <= 0 {
				continue
			}
			name := ServiceChain(p, s.Key)
			top.Rules = append(top.Rules, serviceRule(s, fam, s.Probability, name))
			chains = append(chains, endpointChain(opts, s, name))
		case len(s.Zone) > 0:
			name := ZoneServiceChain(p, s.Key)
			zone.Rules = append(zone.Rules, serviceRule(s, fam, 1, name))
			chains = append(chains, zoneServiceChain(opts, s, name))
			zoned++
		}
	}
	if zoned > 0 {
		// Last: a service with local endpoints is never in the zone chain, and the director's
		// traffic to one without them falls through to the node's own (absent) listener, as
		// it did before zones.
		top.Rules = append(top.Rules, "-j "+zone.Name)
		chains = append(chains, zone)
	}
	// Every service and zone chain may jump to MASQ (hairpin, in-zone clients), and so may
	// every service chain with masquerade on.
	masq := opts.Masquerade || len(chains) > 0
	chains = append(chains, top)
	// PREROUTING catches what the director forwards (DR: the VIP as destination; IPIP: the
	// inner packet, after tunl0 decapsulates it). OUTPUT too, as kube-proxy does with
	// KUBE-SERVICES: the VIP is a local address on a realserver (lo or the dummy device), so
	// a process on the node itself (a hostNetwork pod, a probe) connecting to VIP:port would
	// otherwise reach the node's own socket and be refused; on a colocated director such
	// connections get the same local/total share. The top chain matches only VIP:port pairs,
	// so other locally generated traffic pays one chain traversal per new connection.
	jumps := []Jump{{From: "PREROUTING", Rule: "-j " + p}, {From: "OUTPUT", Rule: "-j " + p}}
	if masq {
		mark := fmt.Sprintf("0x%x", opts.mark())
		chains = append(chains,
			// kube-proxy's KUBE-MARK-MASQ: set the bit, masquerade later in POSTROUTING, when the
			// outgoing interface (and so the address to masquerade to) is known.
			Chain{Name: MasqChain(p), Rules: []string{"-j MARK --set-xmark " + mark + "/" + mark}},
			// kube-proxy's KUBE-POSTROUTING: skip unmarked packets, clear the bit (so a packet
			// that is encapsulated and routed again is not masqueraded twice), masquerade with a
			// fully random source port (avoids the conntrack insert race of port reuse).
			Chain{Name: PostroutingChain(p), Rules: []string{
				"-m mark ! --mark " + mark + "/" + mark + " -j RETURN",
				"-j MARK --set-xmark " + mark + "/0x0",
				"-j MASQUERADE --random-fully",
			}},
		)
		jumps = append(jumps, Jump{From: "POSTROUTING", Rule: "-j " + PostroutingChain(p)})
	}
	slices.SortFunc(chains, func(a, b Chain) int { return strings.Compare(a.Name, b.Name) })
	sortJumps(jumps)
	return Ruleset{Prefix: p, Chains: chains, Jumps: jumps}
}

// serviceRule is the rule that sends s's VIP:port to chain, taking new connections with
// probability p (1: all of them), in the order iptables-save prints its parts.
func serviceRule(s netops.LocalService, fam family.Family, p float64, chain string) string {
	var b strings.Builder
	proto := s.Key.Proto.String()
	b.WriteString("-d ")
	b.WriteString(fam.Host(s.Key.VIP).String())
	b.WriteString(" -p ")
	b.WriteString(proto)
	if s.Name != "" {
		b.WriteString(" -m comment --comment")
		b.WriteString(saveString(comment(s.Name)))
	}
	b.WriteString(" -m ")
	b.WriteString(proto)
	b.WriteString(" --dport ")
	b.WriteString(strconv.Itoa(int(s.Key.Port)))
	if p < 1 {
		b.WriteString(" -m statistic --mode random --probability ")
		b.WriteString(Probability(p))
	}
	b.WriteString(" -j ")
	b.WriteString(chain)
	return b.String()
}

// endpointChain spreads new connections evenly over s's endpoints the way kube-proxy does:
// rule i of n matches with probability 1/(n-i), the last one always. Before that, with
// masquerade on, every connection is marked for masquerade; and so is a connection from one of
// the endpoints itself (hairpin, kube-proxy's "-s POD -j KUBE-MARK-MASQ"): a pod that reaches
// its own service and is DNATed to itself would otherwise see its own address as the source
// and answer inside the pod, where the reply never meets the conntrack entry that undoes the
// DNAT.
func endpointChain(opts Options, s netops.LocalService, name string) Chain {
	c := Chain{Name: name, Rules: make([]string, 0, 2*len(s.Endpoints)+1)}
	masq := "-j " + MasqChain(opts.Chain)
	if opts.Masquerade {
		c.Rules = append(c.Rules, masq)
	}
	fam := opts.family()
	var last netip.Addr
	for _, e := range s.Endpoints { // sorted: equal addresses are adjacent
		if a := e.Addr(); a != last {
			c.Rules = append(c.Rules, "-s "+fam.Host(a).String()+" "+masq)
			last = a
		}
	}
	targets := make([]netops.Target, len(s.Endpoints))
	for i, e := range s.Endpoints {
		targets[i] = netops.Target{Addr: e, Weight: 1}
	}
	c.Rules = append(c.Rules, dnatRules(s.Key.Proto, targets)...)
	return c
}

// dnatRules spreads new connections over targets by weight: target i of n takes
// w_i / (w_i + ... + w_n) of what rules 1..i-1 left, the last one the rest, so that each takes
// its weight's share of the whole (equal weights give kube-proxy's 1/(n-i)). Weights must be
// positive.
func dnatRules(proto netops.Proto, targets []netops.Target) []string {
	// "-p" is required: iptables refuses DNAT to a port without a TCP/UDP protocol match.
	pre := "-p " + proto.String() + " "
	rest := 0
	for _, t := range targets {
		rest += t.Weight
	}
	rules := make([]string, 0, len(targets))
	for i, t := range targets {
		to := t.Addr.Addr().String()
		if t.Addr.Port() != 0 {
			to = t.Addr.String()
		}
		if i < len(targets)-1 {
			rules = append(rules, pre+"-m statistic --mode random --probability "+
				Probability(float64(t.Weight)/float64(rest))+" -j DNAT --to-destination "+to)
		} else {
			rules = append(rules, pre+"-j DNAT --to-destination "+to)
		}
		rest -= t.Weight
	}
	return rules
}

// Probability formats p as iptables-save prints it back: the statistic match stores
// lround(p * 2^31) as a u32 and prints that over 2^31 with 11 decimals, so 1/3 comes back as
// 0.33333333349, not 0.3333333333. Rendering the stored value keeps Render's text equal to the
// kernel's, so unchanged rules compare equal.
func Probability(p float64) string {
	if math.IsNaN(p) || p < 0 {
		p = 0
	}
	p = min(p, 1)
	return strconv.FormatFloat(math.Round(p*(1<<31))/(1<<31), 'f', 11, 64)
}

// maxComment is the longest comment the comment match takes (XT_MAX_COMMENT_LEN - 1).
const maxComment = 255

// comment makes name safe for a rule: printable ASCII without quotes or backslashes (which
// iptables-restore would need escaped), at most maxComment bytes.
func comment(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '_'
		}
	}
	if len(b) > maxComment {
		b = b[:maxComment]
	}
	return string(b)
}

// saveString quotes s as libxtables' xtables_save_string does, with its leading blank: bare
// when s is made only of letters, digits, '_' and '-', in double quotes otherwise.
func saveString(s string) string {
	bare := s != ""
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			bare = false
			break
		}
	}
	if bare {
		return " " + s
	}
	return ` "` + s + `"`
}
