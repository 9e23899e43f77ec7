package config

import (
	"reflect"
	"runtime"
	"sync"

	"github.com/go-playground/validator/v10"
	"go.yaml.in/yaml/v3"

	"github.com/ravel-lb/ravel/schema"
)

// Decoding and the field rules of a long services list are spread over the CPUs; each part
// has a decoder of its own, and their findings are joined in list order, so the result is the
// one a single decoder gives. Cross-field checks and normalization stay on one CPU: they are
// cheap and relate services to each other.

// parallelMin is the number of services from which decoding and field checks use every CPU.
const parallelMin = 1000

// parallelParts is how many parts the parallel checks use.
func parallelParts() int { return runtime.GOMAXPROCS(0) }

// forParts runs fn over [0, n) cut into parts ranges, concurrently.
func forParts(n, parts int, fn func(part, lo, hi int)) {
	var wg sync.WaitGroup
	for k := range parts {
		lo, hi := n*k/parts, n*(k+1)/parts
		wg.Go(func() { fn(k, lo, hi) })
	}
	wg.Wait()
}

// decodeServices decodes the items of the top-level services list into s (already made) on
// several CPUs. It is used only for files without aliases and merge keys, so that no part can
// run out of the expansion budget where one decoder would not.
func (d *decoder) decodeServices(items []*yaml.Node, s reflect.Value, parts int) {
	d.forServices(len(items), parts, func(c *decoder, lo, hi int) {
		for i := lo; i < hi; i++ {
			e := s.Index(i)
			if def, ok := schema.DefaultFor(e.Type()); ok {
				e.Set(def)
			}
			c.pushIndex(i)
			c.decode(items[i], e)
			c.pop()
		}
	})
}

// forServices runs fn over the indexes of a services list of n items, cut into parts ranges
// decoded concurrently, each by a decoder of its own; their findings are joined in list
// order.
func (d *decoder) forServices(n, parts int, fn func(c *decoder, lo, hi int)) {
	kids := make([]*decoder, parts)
	forParts(n, parts, func(k, lo, hi int) {
		c := &decoder{file: d.file, root: d.root, chunks: d.chunks, bad: map[string]bool{}, budget: d.budget,
			depth: d.depth, path: append([]seg(nil), d.path...)}
		fn(c, lo, hi)
		kids[k] = c
	})
	used := 0
	for _, c := range kids {
		for _, f := range c.errs {
			d.add(f)
		}
		d.warns = append(d.warns, c.warns...)
		d.dropped += c.dropped
		for p := range c.bad {
			d.bad[p] = true
		}
		used += d.budget - c.budget
	}
	d.budget -= used
}

// validateServices checks the field rules of every service but those skip names, on several
// CPUs for long lists, and returns the failures of each, in list order.
func validateServices(services []schema.Service, skip func(i int) bool) [][]validator.FieldError {
	out := make([][]validator.FieldError, len(services))
	parts := 1
	if len(services) >= parallelMin {
		parts = parallelParts()
	}
	forParts(len(services), parts, func(_, lo, hi int) {
		v := validatorInstance()
		for i := lo; i < hi; i++ {
			if skip(i) {
				continue
			}
			if ves, ok := v.Struct(&services[i]).(validator.ValidationErrors); ok {
				out[i] = ves
			}
		}
	})
	return out
}
