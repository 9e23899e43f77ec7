package iptables

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/reconcile/chains"
)

// Tables programs the nat chains ravel owns under one prefix (config iptables.chain).
type Tables interface {
	// Apply makes the owned chains and jumps equal to rs, changing only what differs, and
	// returns what it changed. rs.Prefix must be the prefix the Tables was made for.
	Apply(ctx context.Context, rs chains.Ruleset) (chains.Patch, error)
	// Cleanup removes every owned chain and jump (the realserver role stopping).
	Cleanup(ctx context.Context) error
	// Dump returns the owned chains and jumps as iptables-save prints them
	// (chains.Ruleset.String of what is in the table).
	Dump(ctx context.Context) (string, error)
}

// ErrInUse is the class of refusing to delete a chain that still has rules or is still the
// target of a rule (EBUSY with nf_tables, ENOTEMPTY or EMLINK "Too many links" with legacy).
// Apply hits it when a foreign rule jumps into a stale ravel chain: ravel leaves foreign rules
// alone, so the batch fails as a whole and nothing changes.
var ErrInUse = errors.New("chain in use")

// backend is what the Apply algorithm needs from a nat table: the real one runs iptables,
// the fake one is a table in memory.
type backend interface {
	// save returns the nat table as `iptables-save -t nat` prints it.
	save(ctx context.Context) (string, error)
	// restore runs batch as `iptables-restore --noflush` does: all of it or nothing.
	restore(ctx context.Context, batch string) error
	// insert inserts rule (iptables-save syntax, after "-A chain ") at pos in chain.
	insert(chain string, pos int, rule string) error
	// deleteIfExists deletes the first rule of chain equal to rule, if there is one.
	deleteIfExists(chain, rule string) error
}

// engine is the Apply algorithm shared by Real and Fake. The caller serializes calls.
type engine struct {
	prefix string
	b      backend
}

func (e engine) current(ctx context.Context) (chains.Ruleset, error) {
	save, err := e.b.save(ctx)
	if err != nil {
		return chains.Ruleset{}, err
	}
	return chains.Parse(e.prefix, save), nil
}

func (e engine) apply(ctx context.Context, want chains.Ruleset) (chains.Patch, error) {
	if want.Prefix != e.prefix {
		return chains.Patch{}, fmt.Errorf("ruleset for chain %q given to tables of chain %q: %w",
			want.Prefix, e.prefix, netops.ErrInvalid)
	}
	cur, err := e.current(ctx)
	if err != nil {
		return chains.Patch{}, err
	}
	p := chains.Diff(cur, want)
	// Jumps out first: the batch may delete the chain a jump targets (-X of a referenced chain
	// fails). iptables -D deletes the first equal rule; a duplicate is deleted once per copy.
	for _, j := range p.DelJumps {
		if err := e.b.deleteIfExists(j.From, j.Rule); err != nil {
			return p, fmt.Errorf("delete jump %q: %w", j, err)
		}
	}
	if batch := p.Batch(); batch != "" {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		if err := e.b.restore(ctx, batch); err != nil {
			return p, fmt.Errorf("restore %d chains, delete %d: %w", len(p.Write), len(p.Delete), err)
		}
	}
	// Jumps in last, once their target chains exist. Position 1: in front of kube-proxy's
	// KUBE-SERVICES (see chains.Jump.Late), so a VIP that is also local, or also a Service's
	// loadBalancer IP, is DNATed to this node's pods and never handed to kube-proxy.
	for _, j := range p.AddJumps {
		if err := e.b.insert(j.From, 1, j.Rule); err != nil {
			return p, fmt.Errorf("insert jump %q: %w", j, err)
		}
	}
	return p, nil
}

func (e engine) cleanup(ctx context.Context) error {
	_, err := e.apply(ctx, chains.Ruleset{Prefix: e.prefix})
	return err
}

func (e engine) dump(ctx context.Context) (string, error) {
	cur, err := e.current(ctx)
	if err != nil {
		return "", err
	}
	return cur.String(), nil
}

// lines splits a batch into lines, numbered from 1 like iptables-restore's messages.
func lines(batch string) []string {
	return strings.Split(strings.TrimRight(batch, "\n"), "\n")
}
