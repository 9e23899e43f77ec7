package chains

import (
	"cmp"
	"slices"
	"strings"
)

// Ruleset is the state of the chains ravel owns in the nat table: the desired state from Render,
// or the current one from Parse. Chains are sorted by name, each rule is the text after
// "-A CHAIN " exactly as iptables-save prints it.
type Ruleset struct {
	// Prefix is the top chain; every owned chain is Prefix or starts with Prefix + "-".
	Prefix string
	// Chains are the owned chains, sorted by name, with their rules in order.
	Chains []Chain
	// Jumps are the rules in built-in chains that jump into owned chains, in iptables-save
	// order (built-in chain order, then position).
	Jumps []Jump
}

// Chain is one owned chain and its rules.
type Chain struct {
	Name  string
	Rules []string
}

// Jump is a rule in a built-in chain whose target is an owned chain.
type Jump struct {
	// From is the built-in chain: PREROUTING, OUTPUT or POSTROUTING.
	From string
	// Rule is the rule after "-A From ", as iptables-save prints it, e.g. "-j RAVEL".
	Rule string
	// Late is set by Parse when a rule of From jumping to a chain ravel must precede
	// (kube-proxy's KUBE-SERVICES, Docker's DOCKER) comes before this jump.
	Late bool
}

func (j Jump) String() string { return "-A " + j.From + " " + j.Rule }

// mustPrecede are foreign chains whose jump in PREROUTING/OUTPUT ravel's jump must come before.
// KUBE-SERVICES ends with "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS" and DOCKER DNATs
// published ports on every local address: the VIP is local on a realserver (and a VIP may also
// be a Service's loadBalancer IP), so behind them a connection could be taken by kube-proxy and
// sent to any pod in the cluster, the extra hop ravel exists to avoid.
var mustPrecede = map[string]bool{"KUBE-SERVICES": true, "DOCKER": true}

// builtinOrder is the order iptables-save lists the nat table's built-in chains in.
var builtinOrder = map[string]int{"PREROUTING": 1, "INPUT": 2, "OUTPUT": 3, "POSTROUTING": 4}

// Chain returns the owned chain name and whether it is in rs.
func (rs Ruleset) Chain(name string) (Chain, bool) {
	i, ok := slices.BinarySearchFunc(rs.Chains, name, func(c Chain, n string) int { return strings.Compare(c.Name, n) })
	if !ok {
		return Chain{}, false
	}
	return rs.Chains[i], true
}

// String renders rs as iptables-save prints the owned part of the nat table: the owned chains'
// declarations, the jumps, then every owned chain's rules. Fed to `iptables-restore --noflush`
// on a table without ravel's chains it creates exactly rs (the jumps appended, not inserted).
func (rs Ruleset) String() string {
	var b strings.Builder
	b.Grow(64 * (len(rs.Chains) + len(rs.Jumps)))
	b.WriteString("*nat\n")
	for _, c := range rs.Chains {
		declare(&b, c.Name)
	}
	for _, j := range rs.Jumps {
		b.WriteString(j.String())
		b.WriteByte('\n')
	}
	for _, c := range rs.Chains {
		appendRules(&b, c)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func declare(b *strings.Builder, chain string) {
	b.WriteByte(':')
	b.WriteString(chain)
	b.WriteString(" - [0:0]\n")
}

func appendRules(b *strings.Builder, c Chain) {
	for _, r := range c.Rules {
		b.WriteString("-A ")
		b.WriteString(c.Name)
		b.WriteByte(' ')
		b.WriteString(r)
		b.WriteByte('\n')
	}
}

// Parse reads the chains owned under prefix from `iptables-save` output (only the *nat table is
// read; every other line, foreign chains included, is ignored). Jumps are the rules of built-in
// chains whose target (-j or -g) is owned.
func Parse(prefix, save string) Ruleset {
	rs := Ruleset{Prefix: prefix}
	index := map[string]int{} // chain name -> position in rs.Chains
	chain := func(name string) *Chain {
		i, ok := index[name]
		if !ok {
			i = len(rs.Chains)
			index[name] = i
			rs.Chains = append(rs.Chains, Chain{Name: name})
		}
		return &rs.Chains[i]
	}
	guarded := map[string]bool{} // built-in chain -> a mustPrecede jump was seen
	inNat := false
	for line := range strings.Lines(save) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "*"):
			inNat = line == "*nat"
		case !inNat:
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if Owned(prefix, name) {
				chain(name)
			}
		case strings.HasPrefix(line, "-A "):
			name, rule, _ := strings.Cut(line[3:], " ")
			if Owned(prefix, name) {
				c := chain(name)
				c.Rules = append(c.Rules, rule)
				continue
			}
			if builtinOrder[name] == 0 {
				continue // a foreign user chain: never ours to read or change
			}
			t := target(rule)
			switch {
			case Owned(prefix, t):
				rs.Jumps = append(rs.Jumps, Jump{From: name, Rule: rule, Late: guarded[name]})
			case mustPrecede[t]:
				guarded[name] = true
			}
		}
	}
	slices.SortFunc(rs.Chains, func(a, b Chain) int { return strings.Compare(a.Name, b.Name) })
	sortJumps(rs.Jumps)
	return rs
}

func sortJumps(js []Jump) {
	slices.SortStableFunc(js, func(a, b Jump) int { return cmp.Compare(builtinOrder[a.From], builtinOrder[b.From]) })
}

// target is the chain or target a rule jumps (-j) or goes (-g) to, "" if none.
func target(rule string) string {
	if !strings.Contains(rule, "-j ") && !strings.Contains(rule, "-g ") {
		return ""
	}
	args := SplitRule(rule)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" || args[i] == "-g" || args[i] == "--jump" || args[i] == "--goto" {
			return args[i+1]
		}
	}
	return ""
}

// SplitRule splits a rule as iptables-restore does: on blanks, with double quotes grouping and
// \" standing for a quote inside them. It gives the arguments to pass to iptables(8).
func SplitRule(rule string) []string {
	var (
		args   []string
		cur    strings.Builder
		quoted bool
		inArg  bool
	)
	for i := 0; i < len(rule); i++ {
		c := rule[i]
		switch {
		case quoted && c == '\\' && i+1 < len(rule) && (rule[i+1] == '"' || rule[i+1] == '\\'):
			i++
			cur.WriteByte(rule[i])
		case c == '"':
			quoted = !quoted
			inArg = true
		case !quoted && (c == ' ' || c == '\t'):
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}
