package config

import (
	"bytes"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ravel-lb/ravel/schema"
)

// Cache carries the services decoded by one parse of a file to the next parse of the same
// file, so that a reload of a long file in which one service changed parses that service
// again, not all of them. A service is reused when its item has the same text, starts on the
// same line and has the same index in the list as before, and its decoding had no finding:
// then decoding it again would give the same service (decoding a service depends on its text
// alone; the checks that relate it to the rest of the file run on every parse). When the rest
// of the file is the same too and the service was resolved without a finding, the cache
// holds the effective service itself, which the next config shares (no copy is kept);
// otherwise it holds a copy of the decoded one. An edit that adds or removes lines re-parses
// the services below it.
//
// A nil *Cache is valid and caches nothing. A Cache may be used by one parse at a time; Parse
// serializes them.
type Cache struct {
	mu   sync.Mutex
	last *cached
	// spare is the array of a file's bytes that no parse and no caller holds any more (the
	// previous parse's, once a newer one replaced it), which ReadFile reads into: reading a
	// 7 MB file into fresh memory, zeroed first, was two thirds of a one-weight reload under
	// the QEMU guest's emulation (0.2 s of CPU).
	spare []byte
}

// ReadFile is config.ReadFile into the cache's spare array when it has one. The bytes stay
// valid until they are given to Parse and a later Parse replaces them, or until the next
// ReadFile if they are not given to Parse: the caller keeps nothing else of them.
func (c *Cache) ReadFile(path string) ([]byte, error) {
	c.mu.Lock()
	spare := c.spare
	c.mu.Unlock()
	return readInto(spare, path)
}

// consume notes that Parse was given data: if it is the spare array, it is no longer spare.
func (c *Cache) consume(data []byte) {
	if cap(data) > 0 && cap(c.spare) > 0 && unsafe.SliceData(data[:1]) == unsafe.SliceData(c.spare[:1]) {
		c.spare = nil
	}
}

// cached is what one chunked parse of a file decoded.
type cached struct {
	name  string
	data  []byte
	items []chunk
	// services are the decoded services, before the defaults are applied, kept[i] when
	// services[i] was decoded without a finding and is not kept resolved (effective).
	services []schema.Service
	kept     []bool
	valid    []bool // and passed its field rules
	head     []byte // the file without the items
	cut      cutAt
	// effective are the services as resolved (defaults applied), for effOK[i]: resolved
	// without a finding. A parse of the same text under the same head shares them.
	effective []schema.Service
	effOK     []bool
	// seen and ids are what the checks across services recorded, when no two services
	// clashed (see decoder.checkServices); nil otherwise. Read-only once made.
	seen       *seenServices
	ids        []serviceID
	sharedSeen bool         // this parse took seen from the previous one (for the tests)
	reused     atomic.Int64 // how many services came from the previous parse
}

// start hands the previous parse of name to list, and gives it a record of this one.
func (c *Cache) start(name string, list *itemList) {
	if c == nil {
		return
	}
	if c.last != nil && c.last.name == name {
		list.prev = c.last
	}
	n := len(list.items)
	list.next = &cached{name: name, data: list.data, items: list.items, head: list.head, cut: list.cut,
		services: make([]schema.Service, n), kept: make([]bool, n), valid: make([]bool, n),
		effective: make([]schema.Service, n), effOK: make([]bool, n)}
}

// Bytes returns the bytes of the cache's last parse of name, or nil when it kept none (a
// short file, parsed whole, is not cached).
func (c *Cache) Bytes(name string) []byte {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.previous(name); p != nil {
		return p.data
	}
	return nil
}

// previous is the cache's last parse of name, or nil.
func (c *Cache) previous(name string) *cached {
	if c == nil || c.last == nil || c.last.name != name {
		return nil
	}
	return c.last
}

// finish keeps this parse for the next one, unless it had to be redone whole.
func (c *Cache) finish(list *itemList) {
	if c == nil || list == nil || list.failed.Load() {
		return
	}
	if old := c.last; old != nil && cap(old.data) > 0 && cap(list.next.data) > 0 &&
		unsafe.SliceData(old.data[:1]) != unsafe.SliceData(list.next.data[:1]) {
		c.spare = old.data // the replaced parse was the last holder of its bytes
	}
	c.last = list.next
}

// reuse sets e to the service the previous parse made from the same text as item i, and
// reports whether there was one: the effective service itself under the same rest of the
// file, else a copy of the decoded one.
func (s *itemList) reuse(i int, e reflect.Value) bool {
	p := s.prev
	if p == nil || i >= len(p.items) || !p.kept[i] && !p.effOK[i] {
		return false
	}
	was, now := p.items[i], s.items[i]
	known := i < s.sameBelow || i >= s.sameFrom && s.sameFrom > 0
	if !known && (was.line != now.line || !bytes.Equal(p.data[was.start:was.end], s.data[now.start:now.end])) {
		return false
	}
	switch {
	case p.effOK[i] && bytes.Equal(p.head, s.head):
		// Resolved under the same defaults: the effective service is the same. Nothing
		// writes into a resolved service (a Config is read-only), so it is shared.
		e.Set(reflect.ValueOf(p.effective[i]))
		s.final[i] = true
		s.next.effective[i], s.next.effOK[i] = p.effective[i], true
	case p.kept[i]:
		e.Set(reflect.ValueOf(cloneService(p.services[i])))
		s.next.services[i], s.next.kept[i] = p.services[i], true
	default:
		return false // resolved under other defaults, and the decoded form not kept
	}
	s.next.reused.Add(1)
	s.reused[i] = true
	return true
}

// validated reports whether services[i] is known to pass its field rules: it was reused, and
// passed them in the previous parse (they look at the service alone). s may be nil.
func (s *itemList) validated(i int) bool {
	return s != nil && s.prev != nil && s.reused[i] && s.prev.valid[i]
}

// isFinal reports whether services[i] is shared, already resolved (see itemList.final): its
// normalization is skipped. s may be nil.
func (s *itemList) isFinal(i int) bool { return s != nil && s.final[i] }

// resolved records services[i] as resolved, for the next parse, when it was decoded and
// checked without a finding and resolving it reported none. The cache then keeps the
// effective service only (it is the config's own, no copy): after an edit of the defaults,
// the rare case, the item is parsed again. s may be nil.
func (s *itemList) resolved(i int, svc schema.Service, clean bool) {
	if s != nil && s.next != nil && clean && s.next.kept[i] && s.next.valid[i] {
		s.next.effective[i], s.next.effOK[i] = svc, true
		s.next.services[i], s.next.kept[i] = schema.Service{}, false
	}
}

// setValid records whether services[i] passed its field rules. s may be nil.
func (s *itemList) setValid(i int, ok bool) {
	if s != nil && s.next != nil {
		s.next.valid[i] = ok
	}
}

// keep records the service decoded from item i, before the defaults are applied to it (they
// write into it), for the next parse.
func (s *itemList) keep(i int, e reflect.Value) {
	if s.next == nil {
		return
	}
	s.next.services[i] = cloneService(e.Interface().(schema.Service))
	s.next.kept[i] = true
}

// cloneService copies s and what it points to, so that normalizing the copy (which writes
// into protocols, the ipvs block, backends and the health check) cannot reach s. Pointers to
// numbers (weights, thresholds) are shared: nothing writes through them (normalization gives
// an unset weight a new pointer), and copying them was most of a reload's copying (200,000
// weights at 10,000 services). TestCloneServiceSharesNothing fails when a field is added to
// schema.Service and not copied here.
func cloneService(s schema.Service) schema.Service {
	s.Protocols = slices.Clone(s.Protocols)
	if s.Kubernetes != nil {
		k := *s.Kubernetes
		s.Kubernetes = &k
	}
	s.Backends = slices.Clone(s.Backends)
	if s.IPVS != nil {
		o := *s.IPVS
		o.Flags = slices.Clone(o.Flags)
		s.IPVS = &o
	}
	if s.HealthCheck != nil {
		h := *s.HealthCheck
		s.HealthCheck = &h
	}
	if s.SorryServer != nil {
		ss := *s.SorryServer
		s.SorryServer = &ss
	}
	return s
}
