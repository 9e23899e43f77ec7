package chains

import (
	"slices"
	"strings"
)

// Patch is what turns the current owned chains into the desired ones: an
// `iptables-restore --noflush` batch (Batch) and the jump rules to change around it.
//
// The order of operations, which the applier must keep:
//  1. DelJumps are deleted (one `iptables -D` each), so that no built-in chain refers to a
//     chain the batch removes.
//  2. Batch runs, atomically: it (re)declares Write and Delete chains, which creates a new chain
//     and flushes an existing one (with --noflush, ":CHAIN - [0:0]" flushes only that chain);
//     then moves the Late jumps back in front; then fills Write; then deletes (-X) the stale
//     chains, which are empty and no longer referenced by then: their only references were in
//     owned chains, which were rewritten or flushed above.
//  3. AddJumps are inserted at position 1 (one `iptables -I ... 1` each), after the chains they
//     jump to exist.
type Patch struct {
	Prefix string
	// Write are the owned chains that are new or whose rules changed, with all their rules.
	Write []Chain
	// Delete are the stale owned chains, sorted.
	Delete []string
	// DelJumps are jump rules to delete before the batch: unwanted, or duplicates.
	DelJumps []Jump
	// MoveJumps are wanted jump rules found behind KUBE-SERVICES or DOCKER; the batch deletes
	// and reinserts each at position 1 in one transaction, so no connection misses them.
	MoveJumps []Jump
	// AddJumps are missing jump rules, inserted at position 1 after the batch.
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

// Batch is the input of `iptables-restore --noflush` for step 2, "" when the batch has nothing
// to do.
func (p Patch) Batch() string {
	if len(p.Write) == 0 && len(p.Delete) == 0 && len(p.MoveJumps) == 0 {
		return ""
	}
	var b strings.Builder
	n := len(p.Delete) + 2*len(p.MoveJumps)
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
	for _, j := range p.MoveJumps {
		b.WriteString("-D " + j.From + " " + j.Rule + "\n")
		b.WriteString("-I " + j.From + " 1 " + j.Rule + "\n")
	}
	for _, c := range p.Write {
		appendRules(&b, c)
	}
	for _, name := range p.Delete {
		b.WriteString("-X " + name + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// String shows p for an operator (`ravel plan`, logs, tests): the jump changes as comments in
// the order they are made, around the batch. It is itself valid iptables-restore input.
func (p Patch) String() string {
	var b strings.Builder
	for _, j := range p.DelJumps {
		b.WriteString("# before: iptables -t nat -D " + j.From + " " + j.Rule + "\n")
	}
	b.WriteString(p.Batch())
	for _, j := range p.AddJumps {
		b.WriteString("# after: iptables -t nat -I " + j.From + " 1 " + j.Rule + "\n")
	}
	return b.String()
}

// Changed lists the names of the chains p writes or deletes, sorted, for logs and metrics.
func (p Patch) Changed() []string {
	names := slices.Clone(p.Delete)
	for _, c := range p.Write {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}
