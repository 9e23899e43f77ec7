package chains

import (
	"slices"
	"strings"
)

// Patch is what turns the current owned chains into the desired ones: ONE
// `iptables-restore --noflush` batch (Batch), which iptables applies as one transaction, so no
// packet ever sees a half-written state.
//
// The order of the batch, which matters:
//  1. ":CHAIN - [0:0]" for every chain in Write and Delete: creates a new chain, flushes an
//     existing one (with --noflush only the chains declared are flushed; nothing else is).
//  2. -D of DelJumps: unwanted jumps out of built-in chains, before their target goes in 5.
//  3. -D then -I 1 of each MoveJumps: the jump back in front of KUBE-SERVICES, in one step.
//  4. -A of every rule of Write, then -I 1 of AddJumps: jumps into chains that are complete.
//  5. -X of Delete: the stale chains are empty (flushed in 1) and no longer referenced: their
//     only references were rules of owned chains (rewritten or flushed in 1) and jumps (2).
//
// Jumps are changed in the batch rather than with one `iptables -I/-D` each (go-iptables):
// legacy iptables rewrites the whole nat table for every single-rule command, which costs as
// much as the batch itself at 5,000 rules, and a separate command would not be atomic with the
// chains it jumps to.
type Patch struct {
	Prefix string
	// Write are the owned chains that are new or whose rules changed, with all their rules.
	Write []Chain
	// Delete are the stale owned chains, sorted.
	Delete []string
	// DelJumps are jump rules to delete: unwanted, or duplicates.
	DelJumps []Jump
	// MoveJumps are wanted jump rules found behind KUBE-SERVICES or DOCKER, to delete and
	// insert again at position 1.
	MoveJumps []Jump
	// AddJumps are missing jump rules, to insert at position 1.
	AddJumps []Jump
}

// Diff compares the current owned chains (from Parse) with the desired ones (from Render).
// Chains are compared rule by rule as text; an unchanged chain is left alone.
func Diff(cur, want Ruleset) Patch {
	p := Patch{Prefix: want.Prefix}
	if p.Prefix == "" {
		p.Prefix = cur.Prefix
	}
	for _, w := range want.Chains {
		if c, ok := cur.Chain(w.Name); !ok || !slices.Equal(c.Rules, w.Rules) {
			p.Write = append(p.Write, w)
		}
	}
	for _, c := range cur.Chains {
		if _, ok := want.Chain(c.Name); !ok {
			p.Delete = append(p.Delete, c.Name)
		}
	}
	wanted := map[Jump]bool{}
	for _, j := range want.Jumps {
		wanted[Jump{From: j.From, Rule: j.Rule}] = true
	}
	found := map[Jump][]Jump{} // wanted jump -> its occurrences, in order
	for _, j := range cur.Jumps {
		k := Jump{From: j.From, Rule: j.Rule}
		if wanted[k] {
			found[k] = append(found[k], j)
		} else {
			p.DelJumps = append(p.DelJumps, k)
		}
	}
	for _, j := range want.Jumps {
		k := Jump{From: j.From, Rule: j.Rule}
		occ := found[k]
		switch {
		case len(occ) == 0:
			p.AddJumps = append(p.AddJumps, k)
			continue
		case len(occ) > 1:
			// `iptables -D` deletes the first match: deleting all but one keeps the last.
			for range occ[1:] {
				p.DelJumps = append(p.DelJumps, k)
			}
		}
		if occ[len(occ)-1].Late {
			p.MoveJumps = append(p.MoveJumps, k)
		}
	}
	return p
}

// Empty reports whether p changes nothing.
func (p Patch) Empty() bool {
	return len(p.Write) == 0 && len(p.Delete) == 0 && len(p.DelJumps) == 0 &&
		len(p.MoveJumps) == 0 && len(p.AddJumps) == 0
}

// Batch is the input of `iptables-restore --noflush`, "" when p is empty.
func (p Patch) Batch() string {
	if p.Empty() {
		return ""
	}
	var b strings.Builder
	n := len(p.Delete)*2 + len(p.DelJumps) + 2*len(p.MoveJumps) + len(p.AddJumps)
	for _, c := range p.Write {
		n += 1 + len(c.Rules)
	}
	b.Grow(80*n + 16)
	b.WriteString("*nat\n")
	for _, c := range p.Write {
		declare(&b, c.Name)
	}
	for _, name := range p.Delete {
		declare(&b, name) // flushes it, dropping its references to other stale chains
	}
	for _, j := range p.DelJumps {
		b.WriteString("-D " + j.From + " " + j.Rule + "\n")
	}
	for _, j := range p.MoveJumps {
		b.WriteString("-D " + j.From + " " + j.Rule + "\n")
		b.WriteString("-I " + j.From + " 1 " + j.Rule + "\n")
	}
	for _, c := range p.Write {
		appendRules(&b, c)
	}
	for _, j := range p.AddJumps {
		b.WriteString("-I " + j.From + " 1 " + j.Rule + "\n")
	}
	for _, name := range p.Delete {
		b.WriteString("-X " + name + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// String shows p for an operator (`ravel plan`, logs, tests): its batch.
func (p Patch) String() string { return p.Batch() }

// Changed lists the names of the chains p writes or deletes, sorted, for logs and metrics.
func (p Patch) Changed() []string {
	names := slices.Clone(p.Delete)
	for _, c := range p.Write {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}
