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
// Services with the same Key are merged (endpoints united, names joined with ",", the largest
// Probability kept); endpoints are sorted and deduplicated. A service renders a rule only with a
// Probability above 0 and at least one endpoint. Only services and endpoints of opts.Family are
// rendered: iptables and ip6tables are separate tables, one Ruleset each (an IPv4-mapped IPv6
// address counts as IPv4).
func Render(opts Options, svcs []netops.LocalService) Ruleset {
	p := opts.Chain
	top := Chain{Name: p}
	chains := []Chain{}
	for _, s := range merge(opts.family(), svcs) {
		if s.Probability <= 0 || len(s.Endpoints) == 0 {
			continue
		}
		name := ServiceChain(p, s.Key)
		top.Rules = append(top.Rules, serviceRule(s, opts.family(), name))
		chains = append(chains, endpointChain(opts, s, name))
	}
	chains = append(chains, top)
	// PREROUTING catches what the director forwards (DR: the VIP as destination; IPIP: the
	// inner packet, after tunl0 decapsulates it). OUTPUT too, as kube-proxy does with
	// KUBE-SERVICES: the VIP is a local address on a realserver (lo or the dummy device), so
	// a process on the node itself (a hostNetwork pod, a probe) connecting to VIP:port would
	// otherwise reach the node's own socket and be refused; on a colocated director such
	// connections get the same local/total share. The top chain matches only VIP:port pairs,
	// so other locally generated traffic pays one chain traversal per new connection.
	jumps := []Jump{{From: "PREROUTING", Rule: "-j " + p}, {From: "OUTPUT", Rule: "-j " + p}}
	if opts.Masquerade {
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

// merge groups svcs by key (sorted by key), keeping services and endpoints of fam only.
func merge(fam family.Family, svcs []netops.LocalService) []netops.LocalService {
	byKey := map[netops.ServiceKey]*netops.LocalService{}
	var keys []netops.ServiceKey
	for _, s := range svcs {
		s.Key.VIP = s.Key.VIP.Unmap()
		if !fam.Has(s.Key.VIP) {
			continue
		}
		m, ok := byKey[s.Key]
		if !ok {
			m = &netops.LocalService{Key: s.Key}
			byKey[s.Key] = m
			keys = append(keys, s.Key)
		}
		if s.Name != "" && !slices.Contains(strings.Split(m.Name, ","), s.Name) {
			names := append(strings.Split(m.Name, ","), s.Name)
			names = slices.DeleteFunc(names, func(n string) bool { return n == "" })
			slices.Sort(names)
			m.Name = strings.Join(names, ",")
		}
		m.Probability = max(m.Probability, s.Probability)
		for _, e := range s.Endpoints {
			e = netip.AddrPortFrom(e.Addr().Unmap(), e.Port())
			if fam.Has(e.Addr()) {
				m.Endpoints = append(m.Endpoints, e)
			}
		}
	}
	slices.SortFunc(keys, netops.ServiceKey.Compare)
	out := make([]netops.LocalService, 0, len(keys))
	for _, k := range keys {
		s := byKey[k]
		slices.SortFunc(s.Endpoints, netip.AddrPort.Compare)
		s.Endpoints = slices.Compact(s.Endpoints)
		out = append(out, *s)
	}
	return out
}

// serviceRule is the top chain's rule for s, in the order iptables-save prints its parts.
func serviceRule(s netops.LocalService, fam family.Family, chain string) string {
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
	if s.Probability < 1 {
		b.WriteString(" -m statistic --mode random --probability ")
		b.WriteString(Probability(s.Probability))
	}
	b.WriteString(" -j ")
	b.WriteString(chain)
	return b.String()
}

// endpointChain spreads new connections evenly over s's endpoints the way kube-proxy does:
// rule i of n matches with probability 1/(n-i), the last one always.
func endpointChain(opts Options, s netops.LocalService, name string) Chain {
	c := Chain{Name: name, Rules: make([]string, 0, len(s.Endpoints)+1)}
	if opts.Masquerade {
		c.Rules = append(c.Rules, "-j "+MasqChain(opts.Chain))
	}
	// "-p" is required: iptables refuses DNAT to a port without a TCP/UDP protocol match.
	pre := "-p " + s.Key.Proto.String() + " "
	n := len(s.Endpoints)
	for i, e := range s.Endpoints {
		to := e.Addr().String()
		if e.Port() != 0 {
			to = e.String()
		}
		if i < n-1 {
			c.Rules = append(c.Rules, pre+"-m statistic --mode random --probability "+
				Probability(1/float64(n-i))+" -j DNAT --to-destination "+to)
		} else {
			c.Rules = append(c.Rules, pre+"-j DNAT --to-destination "+to)
		}
	}
	return c
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
