package iptables

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

var _ Tables = (*Fake)(nil)

// Fake is a semantic fake of the nat table: it keeps chains and rules, runs Apply with the same
// algorithm as Real, and refuses what iptables refuses with the same error classes (a jump to a
// missing chain, -X of a chain that has rules or is referenced, DNAT to a port without -p, a
// chain name over 28 characters); a failing batch changes nothing, as iptables-restore does.
//
// It stores rules as written: iptables-save would print them in canonical form, which is what
// chains.Render writes, so Fake and the kernel dump the same text for ravel's chains. It is
// safe for concurrent use.
type Fake struct {
	op sync.Mutex // held by Apply, Cleanup and Dump for their whole run, as in Real

	mu      sync.Mutex // guards everything below
	e       engine
	t       natTable
	calls   map[string]int
	fail    map[string][]error
	batches []string
	// otherKube is whether the "other backend" holds kube-proxy's KUBE-SERVICES (see
	// SetOtherBackend); the fake's own table is the backend ravel uses, "nf_tables".
	otherKube bool
}

var _ BackendChecker = (*Fake)(nil)

// SetOtherBackend says whether the other iptables backend holds KUBE-SERVICES.
func (f *Fake) SetOtherBackend(kube bool) {
	f.mu.Lock()
	f.otherKube = kube
	f.mu.Unlock()
}

// CheckBackends implements BackendChecker: the fake's table is ravel's backend.
func (f *Fake) CheckBackends(ctx context.Context) (Backends, error) {
	save, err := f.e.b.save(ctx)
	if err != nil {
		return Backends{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return Backends{Mode: "nf_tables", KubeHere: hasKubeServices(save), KubeOther: f.otherKube, OtherAvailable: true}, nil
}

// Operations of the fake, for Calls and FailNext.
const (
	OpSave    = "save"    // iptables-save -t nat
	OpRestore = "restore" // iptables-restore --noflush
)

// NewFake returns a fake IPv4 nat table with only the built-in chains, for ravel's chains
// under prefix.
func NewFake(prefix string) *Fake { return NewFakeFamily(prefix, family.IPv4) }

// NewFakeFamily is NewFake for the nat table of fam: IPv6 is ip6tables' table, which refuses
// IPv4 addresses (and IPv4's refuses IPv6 ones).
func NewFakeFamily(prefix string, fam family.Family) *Fake {
	f := &Fake{t: newNatTable(fam), calls: map[string]int{}, fail: map[string][]error{}}
	f.e = engine{prefix: prefix, b: fakeBackend{f}}
	return f
}

// Apply implements Tables.
func (f *Fake) Apply(ctx context.Context, rs chains.Ruleset) (chains.Patch, error) {
	f.op.Lock()
	defer f.op.Unlock()
	return f.e.apply(ctx, rs)
}

// Cleanup implements Tables.
func (f *Fake) Cleanup(ctx context.Context) error {
	f.op.Lock()
	defer f.op.Unlock()
	return f.e.cleanup(ctx)
}

// Dump implements Tables.
func (f *Fake) Dump(ctx context.Context) (string, error) {
	f.op.Lock()
	defer f.op.Unlock()
	return f.e.dump(ctx)
}

// Restore runs batch like `iptables-restore --noflush` (tests seed foreign chains with it).
// It is not counted in Calls.
func (f *Fake) Restore(batch string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t.restore(batch)
}

// Save returns the whole nat table as `iptables-save -t nat` prints it, foreign chains included.
func (f *Fake) Save() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t.save()
}

// Calls returns how many times op (OpSave, OpRestore, ...) ran, failed ones included.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Batches returns every batch Apply and Cleanup restored, in order.
func (f *Fake) Batches() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// FailNext makes the next call of op fail with err without changing anything.
func (f *Fake) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = append(f.fail[op], err)
}

// call counts op and pops its queued failure. f.mu must be held.
func (f *Fake) call(op string) error {
	f.calls[op]++
	if q := f.fail[op]; len(q) > 0 {
		f.fail[op] = q[1:]
		return q[0]
	}
	return nil
}

type fakeBackend struct{ f *Fake }

func (b fakeBackend) save(ctx context.Context) (string, error) {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	if err := b.f.call(OpSave); err != nil {
		return "", err
	}
	return b.f.t.save(), nil
}

func (b fakeBackend) restore(ctx context.Context, batch string) error {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	if err := b.f.call(OpRestore); err != nil {
		return err
	}
	b.f.batches = append(b.f.batches, batch)
	return b.f.t.restore(batch)
}

func refuse(class error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), class)
}
