package netops

import (
	"fmt"
	"maps"
	"slices"
)

// callBook is the bookkeeping every fake shares: calls counted per operation (the method
// name), a log of mutating calls in order, and errors queued by FailNext. The owning
// fake's mutex guards it.
type callBook struct {
	mutating map[string]bool // operation name → whether it changes state; fixed at creation
	counts   map[string]int
	log      []string
	fail     map[string][]error
}

func newCallBook(reads, writes []string) callBook {
	b := callBook{mutating: map[string]bool{}, counts: map[string]int{}, fail: map[string][]error{}}
	for _, op := range reads {
		b.mutating[op] = false
	}
	for _, op := range writes {
		b.mutating[op] = true
	}
	return b
}

// call records one call of op (detail describes its arguments, for the log) and returns the
// error queued for op, if any: the caller then returns it without changing its state.
func (b *callBook) call(op, detail string) error {
	mut, ok := b.mutating[op]
	if !ok {
		panic("netops: fake has no operation " + op)
	}
	b.counts[op]++
	if mut {
		entry := op
		if detail != "" {
			entry += " " + detail
		}
		b.log = append(b.log, entry)
	}
	if q := b.fail[op]; len(q) > 0 {
		b.fail[op] = q[1:]
		return q[0]
	}
	return nil
}

func (b *callBook) failNext(op string, err error) {
	if _, ok := b.mutating[op]; !ok {
		panic(fmt.Sprintf("netops: FailNext: no operation %q (want one of %v)", op, slices.Sorted(maps.Keys(b.mutating))))
	}
	b.fail[op] = append(b.fail[op], err)
}

func (b *callBook) countsCopy() map[string]int {
	m := make(map[string]int, len(b.counts))
	for op, n := range b.counts {
		if n > 0 {
			m[op] = n
		}
	}
	return m
}

func (b *callBook) reset() {
	clear(b.counts)
	b.log = nil
}
