package iptables

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

type svcOpt func(*netops.LocalService)

// makeService builds a realserver service (probability 1) on vipPort ("10.0.0.1:80"), TCP.
func makeService(name, vipPort string, opts ...svcOpt) netops.LocalService {
	ap := netip.MustParseAddrPort(vipPort)
	s := netops.LocalService{Name: name, Key: netops.ServiceKey{VIP: ap.Addr(), Port: ap.Port(), Proto: netops.TCP}, Probability: 1}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func withUDP() svcOpt { return func(s *netops.LocalService) { s.Key.Proto = netops.UDP } }

func withEndpoints(eps ...string) svcOpt {
	return func(s *netops.LocalService) {
		for _, e := range eps {
			s.Endpoints = append(s.Endpoints, netip.MustParseAddrPort(e))
		}
	}
}

func withProbability(p float64) svcOpt { return func(s *netops.LocalService) { s.Probability = p } }

const prefix = "RAVEL"

func render(masq bool, svcs ...netops.LocalService) chains.Ruleset {
	return chains.Render(chains.Options{Chain: prefix, Masquerade: masq}, svcs)
}

var builtins = []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}

// splitSave splits the nat table of iptables-save output into ravel's lines (owned chain
// declarations and rules, jumps into owned chains) and everything else ("foreign"), dropping
// the "# Generated/Completed" comments, which carry the time.
func splitSave(save string) (owned, foreign string) {
	var o, f strings.Builder
	inNat := false
	for line := range strings.Lines(save) {
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "*"):
			inNat = line == "*nat\n"
		}
		if !inNat && !strings.HasPrefix(line, "COMMIT") {
			continue
		}
		mine := false
		switch {
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			mine = chains.Owned(prefix, name)
		case strings.HasPrefix(line, "-A "):
			name, rule, _ := strings.Cut(strings.TrimSpace(line[3:]), " ")
			mine = chains.Owned(prefix, name) ||
				slices.Contains(builtins, name) && chains.Owned(prefix, lastTarget(rule))
		}
		if mine {
			o.WriteString(line)
		} else {
			f.WriteString(line)
		}
	}
	return o.String(), f.String()
}

func lastTarget(rule string) string {
	args := chains.SplitRule(rule)
	for i := len(args) - 2; i >= 0; i-- {
		if args[i] == "-j" || args[i] == "-g" {
			return args[i+1]
		}
	}
	return ""
}

// chainsChanged names the owned chains whose lines differ between two owned texts.
func chainsChanged(before, after string) []string {
	group := func(s string) map[string][]string {
		m := map[string][]string{}
		for line := range strings.Lines(s) {
			f := strings.Fields(line)
			name := strings.TrimPrefix(f[0], ":")
			if f[0] == "-A" {
				name = f[1]
			}
			m[name] = append(m[name], line)
		}
		return m
	}
	b, a := group(before), group(after)
	var out []string
	for name := range b {
		if !slices.Equal(b[name], a[name]) {
			out = append(out, name)
		}
	}
	for name := range a {
		if _, ok := b[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
