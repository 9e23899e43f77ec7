package iptables

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
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

// apply reads the table, diffs, and runs the patch as one batch (see chains.Patch for its
// order). The jumps are inserted at position 1, in front of kube-proxy's KUBE-SERVICES (and
// moved back there when found behind it, see chains.Jump.Late): a VIP is a local address on a
// realserver, and may also be a Service's loadBalancer IP, and either way kube-proxy would
// take the connection to any pod in the cluster, the extra hop ravel exists to avoid.
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
	if p.Empty() {
		return p, nil
	}
	if err := e.b.restore(ctx, p.Batch()); err != nil {
		return p, fmt.Errorf("write %d chains, delete %d, %d jumps: %w",
			len(p.Write), len(p.Delete), len(p.AddJumps)+len(p.DelJumps)+len(p.MoveJumps), err)
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
