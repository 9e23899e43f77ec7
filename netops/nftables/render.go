package nftables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
)

// DefaultTable is the table ravel owns when the config names none (rules.table).
const DefaultTable = "ravel"

// DefaultMasqMark is the packet mark bit that asks for masquerade (the iptables backend's too:
// kube-proxy uses 0x4000, kubelet 0x8000, Calico the upper 16 bits).
const DefaultMasqMark = 0x2000

// Priorities of ravel's base chains. nat chains of every program (iptables-nft's and
// iptables-legacy's nat tables, kube-proxy's nftables table) hang on the same NAT hooks,
// ordered by priority, and the first chain that binds a NAT mapping for a new connection wins:
// the kernel's nf_nat_inet_fn stops calling the later ones once nf_nat_initialized is true.
// dstnat is -100, where iptables' nat PREROUTING/OUTPUT and kube-proxy's chains sit, so
// dstnat - 10 runs first: the VIP is a local address on a realserver (and may be a Service's
// loadBalancer IP), and behind kube-proxy a connection could go to any pod in the cluster,
// the extra hop ravel exists to avoid. TestKernelPrecedesKubeProxy shows it on the kernel.
// The numbers are written out: nft 1.0.6 accepts the name dstnat only on the prerouting hook
// ("invalid priority expression value in this context" on output).
const (
	natPriority  = "-110" // dstnat - 10
	postPriority = "90"   // srcnat - 10
)

// Names of the objects in ravel's table. Service and endpoint chains are named by hashes so
// that a name never changes for the same service or endpoint (a change rewrites only them).
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainMarkMasq    = "mark-for-masquerade"
	svcPrefix        = "svc-"  // per service: local endpoints (director and in-zone traffic)
	zonePrefix       = "zone-" // per service without local endpoints: in-zone clients only
	epPrefix         = "ep-"   // per local endpoint (protocol, address, port): masquerade, DNAT
	zoneEpPrefix     = "zep-"  // per zone target: one DNAT
)

// mapName is the verdict map of VIP . protocol . port of one family: "services4" for the
// services with local endpoints, "zone6" for the in-zone-only ones of IPv6, and so on. A map's
// key type is one address type, so each family has its own.
func mapName(kind string, f family.Family) string {
	if f == family.IPv6 {
		return kind + "6"
	}
	return kind + "4"
}

// Options are the node-wide settings of the table (config sections rules and iptables).
type Options struct {
	// Masquerade makes pods see the node's address instead of the client's.
	Masquerade bool
	// MasqMark is the mark bit that asks for masquerade; 0 means DefaultMasqMark.
	MasqMark uint32
	// DirectorInterfaces are the interfaces director-forwarded traffic arrives on
	// (node.interface, tunl0, ip6tnl0): in-zone rules skip what comes in on them.
	DirectorInterfaces []string
}

func (o Options) mark() string {
	if o.MasqMark == 0 {
		return fmt.Sprintf("0x%x", DefaultMasqMark)
	}
	return fmt.Sprintf("0x%x", o.MasqMark)
}

// Ruleset is the content of ravel's table: what Render wants, or the record of what the
// last transactions committed. Base chains, maps and their declarations are fixed; what
// varies is the rules of every chain and the elements of the four maps.
type Ruleset struct {
	// Chains maps every chain (base chains included) to its rules, as written to nft.
	Chains map[string][]string
	// Elements maps each verdict map to its elements: key "vip . proto . port" (the words
	// joined by " . ") to verdict ("goto svc-…"), with the service's name as comment.
	Elements map[string]map[string]Element
}

// Element is one map element's value and comment.
type Element struct {
	Verdict string
	Comment string
}

// baseChains are the chains hooked into the kernel, with their type, hook and priority.
var baseChains = []struct {
	name, hook, priority string
}{
	{chainPrerouting, "prerouting", natPriority},
	{chainOutput, "output", natPriority},
	{chainPostrouting, "postrouting", postPriority},
}

// verdictMaps are the verdict maps, in the order they are declared.
var verdictMaps = []struct {
	name string
	fam  family.Family
}{
	{"services4", family.IPv4}, {"services6", family.IPv6}, {"zone4", family.IPv4}, {"zone6", family.IPv6},
}

// Render is the table for opts and svcs, merged by key (netops.MergeLocal, as the iptables
// backend does).
//
// A service with local endpoints and a probability above 0 is an element of services4/6: all
// traffic to its VIP:port (forwarded by the director, or from this node's processes and pods)
// goes to its chain, which picks an endpoint with `numgen random mod N`. N is the number of
// endpoints over the probability (a colocated director's local/total share: numbers above the
// endpoints' match nothing and fall through to IPVS), so the spread is exact rather than the
// chained probabilities of iptables. A service with no local endpoint but zone targets is an
// element of zone4/6, looked up only for traffic that did not come in on a director
// interface, and spread over its targets by weight ranges.
func Render(opts Options, svcs []netops.LocalService) Ruleset {
	rs := Ruleset{Chains: map[string][]string{}, Elements: map[string]map[string]Element{}}
	for _, m := range verdictMaps {
		rs.Elements[m.name] = map[string]Element{}
	}
	for _, s := range netops.MergeLocal(svcs, 0) {
		fam := family.Of(s.Key.VIP)
		key := s.Key.VIP.String() + " . " + s.Key.Proto.String() + " . " + strconv.Itoa(int(s.Key.Port))
		switch {
		case len(s.Endpoints) > 0 && s.Probability > 0:
			name := svcPrefix + s.Key.Hash()
			rs.Elements[mapName("services", fam)][key] = Element{Verdict: "goto " + name, Comment: s.Name}
			n := len(s.Endpoints)
			mod := max(n, int(math.Round(float64(n)/min(s.Probability, 1))))
			targets := make([]netops.Target, n)
			for i, e := range s.Endpoints {
				targets[i] = netops.Target{Addr: e, Weight: 1}
			}
			// The number is drawn first and the masquerade marks are set in the endpoint's
			// chain: on a colocated director the numbers above the local endpoints fall
			// through to IPVS, and those connections must leave unmarked.
			rs.Chains[name] = []string{pick(&rs, epPrefix, s.Key.Proto, fam, mod, targets, localEndpoint(opts))}
		case len(s.Endpoints) == 0 && len(s.Zone) > 0:
			name := zonePrefix + s.Key.Hash()
			rs.Elements[mapName("zone", fam)][key] = Element{Verdict: "goto " + name, Comment: s.Name}
			var rules []string
			if s.ZoneMasquerade {
				rules = append(rules, "jump "+chainMarkMasq)
			} else {
				// The node's own processes: their source is the VIP (a local address, chosen
				// before the DNAT), which every realserver binds, so the reply would never
				// come back here.
				rules = append(rules, "fib saddr type local jump "+chainMarkMasq)
			}
			total := 0
			for _, t := range s.Zone {
				total += t.Weight
			}
			rules = append(rules, pick(&rs, zoneEpPrefix, s.Key.Proto, fam, total, s.Zone, dnatOnly))
			rs.Chains[name] = rules
		}
	}
	lookups := func(kind string) []string {
		return []string{
			"ip daddr . meta l4proto . th dport vmap @" + mapName(kind, family.IPv4),
			"ip6 daddr . meta l4proto . th dport vmap @" + mapName(kind, family.IPv6),
		}
	}
	pre := lookups("services")
	if len(opts.DirectorInterfaces) > 0 {
		pre = append(pre, "iifname { "+quoteAll(opts.DirectorInterfaces)+" } return")
	}
	rs.Chains[chainPrerouting] = append(pre, lookups("zone")...)
	rs.Chains[chainOutput] = append(lookups("services"), lookups("zone")...)
	mark := opts.mark()
	// kube-proxy's mark-for-masquerade and masquerading chains: set the bit now, masquerade
	// in postrouting when the outgoing interface (and so the address) is known; clear the bit
	// so that a packet encapsulated and routed again is not masqueraded twice.
	rs.Chains[chainMarkMasq] = []string{"meta mark set meta mark | " + mark}
	rs.Chains[chainPostrouting] = []string{
		"meta mark & " + mark + " == 0 return",
		"meta mark set meta mark ^ " + mark,
		"masquerade fully-random",
	}
	return rs
}

// endpointRules are an endpoint chain's rules for a target.
type endpointRules func(proto netops.Proto, fam family.Family, to netip.AddrPort) []string

// localEndpoint is a local pod's chain: masquerade when opts ask for it, and when the pod
// reaches itself (hairpin: DNATed to itself it answers from inside its namespace, never
// through the node, and without masquerade the reply does not match the connection), then
// the DNAT.
func localEndpoint(opts Options) endpointRules {
	return func(proto netops.Proto, fam family.Family, to netip.AddrPort) []string {
		// The mark is set in place rather than by a jump to mark-for-masquerade: the kernel
		// validates every jump of the table on each commit, and 5,000 endpoint chains each
		// jumping there made every transaction (a one-endpoint change too) about half again
		// as long (bench/nftables.sh).
		mark := "meta mark set meta mark | " + opts.mark()
		var rules []string
		if opts.Masquerade {
			rules = append(rules, mark)
		}
		rules = append(rules, fmt.Sprintf("%s saddr %s %s", ipWord(fam), to.Addr(), mark))
		return append(rules, dnat(proto, fam, to))
	}
}

// dnatOnly is a zone target's chain: its service's chain decided the masquerade already.
func dnatOnly(proto netops.Proto, fam family.Family, to netip.AddrPort) []string {
	return []string{dnat(proto, fam, to)}
}

// pick is the rule that chooses among targets by weight: `numgen random mod mod` into a
// verdict map of ranges, one per target, each as wide as its weight. It adds the targets'
// endpoint chains (prefix and a hash of protocol and address, rules from ep) to rs.
func pick(rs *Ruleset, prefix string, proto netops.Proto, fam family.Family, mod int, targets []netops.Target, ep endpointRules) string {
	if len(targets) == 1 && targets[0].Weight == mod {
		name := prefix + endpointHash(proto, targets[0].Addr)
		rs.Chains[name] = ep(proto, fam, targets[0].Addr)
		return "goto " + name // one target takes everything: no number to draw
	}
	var b strings.Builder
	fmt.Fprintf(&b, "numgen random mod %d vmap { ", mod)
	at := 0
	first := true
	for _, t := range targets {
		if t.Weight <= 0 {
			continue
		}
		name := prefix + endpointHash(proto, t.Addr)
		rs.Chains[name] = ep(proto, fam, t.Addr)
		if !first {
			// A blank before the comma too: knftables' fake finds a rule's jump targets by
			// splitting on blanks ("ep-X," would be a missing chain); nft reads both forms.
			b.WriteString(" , ")
		}
		first = false
		if t.Weight == 1 {
			fmt.Fprintf(&b, "%d : goto %s", at, name)
		} else {
			fmt.Fprintf(&b, "%d-%d : goto %s", at, at+t.Weight-1, name)
		}
		at += t.Weight
	}
	b.WriteString(" }")
	return b.String()
}

// dnat is an endpoint chain's rule. The protocol match comes first: nft refuses a port in
// dnat without a transport protocol in the rule.
func dnat(proto netops.Proto, fam family.Family, to netip.AddrPort) string {
	dst := to.Addr().String()
	if to.Port() != 0 {
		dst = to.String()
	}
	return fmt.Sprintf("meta l4proto %s dnat %s to %s", proto, ipWord(fam), dst)
}

// endpointHash names an endpoint chain: 12 base32 characters of sha256 of protocol and
// address, shared by every service that DNATs there.
func endpointHash(proto netops.Proto, to netip.AddrPort) string {
	sum := sha256.Sum256([]byte(proto.String() + " " + to.String()))
	return base32.StdEncoding.EncodeToString(sum[:])[:12]
}

func ipWord(f family.Family) string {
	if f == family.IPv6 {
		return "ip6"
	}
	return "ip"
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
