package kube

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// store is the cache behind one reflector: objects keyed by namespace/name, transformed on the
// way in, with an optional index (EndpointSlices by service name). Keying by name is what makes
// node events idempotent: an ADDED for a node already known replaces it, and a re-list replaces
// the whole content, so a reconnect can never duplicate a node.
//
// The reflector's goroutine writes; the Source's loop reads. Every write reports what it touched
// to onChange, after releasing the lock.
type store struct {
	// Set at construction, read-only after.
	name      string
	transform cache.TransformFunc
	indexOf   func(runtime.Object) string        // nil: no index
	unchanged func(old, cur runtime.Object) bool // nil: every update is a change
	onChange  func(touched []runtime.Object, relist bool)

	mu     sync.RWMutex
	items  map[string]runtime.Object
	index  map[string]map[string]runtime.Object // indexOf value → key → object
	synced bool                                 // a first Replace (list) has landed
	// relists counts the Replaces, bumped with the swap of the content: a reader that saw a
	// re-list's content sees its count too, even before onChange has reported it.
	relists uint64
}

var _ cache.TransformingStore = (*store)(nil)

func newStore(name string, transform cache.TransformFunc, onChange func([]runtime.Object, bool)) *store {
	return &store{
		name:      name,
		transform: transform,
		onChange:  onChange,
		items:     map[string]runtime.Object{},
		index:     map[string]map[string]runtime.Object{},
	}
}

// Transformer lets the reflector apply the transform in its own temporary store (watch-list).
func (s *store) Transformer() cache.TransformFunc { return s.transform }

func (s *store) prepare(obj any) (string, runtime.Object, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if s.transform != nil {
		var err error
		if obj, err = s.transform(obj); err != nil {
			return "", nil, err
		}
	}
	ro, ok := obj.(runtime.Object)
	if !ok {
		return "", nil, fmt.Errorf("kube: %s store: unexpected %T", s.name, obj)
	}
	m, err := meta.Accessor(ro)
	if err != nil {
		return "", nil, err
	}
	key := m.GetName()
	if ns := m.GetNamespace(); ns != "" {
		key = ns + "/" + key
	}
	return key, ro, nil
}

// Add stores obj (an ADDED for a known key is an update).
func (s *store) Add(obj any) error { return s.put(obj) }

// Update stores obj.
func (s *store) Update(obj any) error { return s.put(obj) }

func (s *store) put(obj any) error {
	key, o, err := s.prepare(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.items[key]
	s.items[key] = o
	s.unindex(key, old)
	s.reindex(key, o)
	s.mu.Unlock()
	if old != nil && s.unchanged != nil && s.unchanged(old, o) {
		return nil
	}
	s.onChange(nonNil(old, o), false)
	return nil
}

// Delete removes obj.
func (s *store) Delete(obj any) error {
	key, o, err := s.prepare(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.items[key]
	delete(s.items, key)
	s.unindex(key, old)
	s.mu.Unlock()
	s.onChange(nonNil(old, o), false)
	return nil
}

// Replace swaps the whole content for a (re-)list result and marks the store synced.
func (s *store) Replace(list []any, _ string) error {
	items := make(map[string]runtime.Object, len(list))
	for _, obj := range list {
		key, o, err := s.prepare(obj)
		if err != nil {
			return err
		}
		items[key] = o
	}
	s.mu.Lock()
	touched := make([]runtime.Object, 0, len(s.items)+len(items))
	for _, o := range s.items {
		touched = append(touched, o)
	}
	s.items = items
	s.relists++
	s.index = map[string]map[string]runtime.Object{}
	for key, o := range items {
		s.reindex(key, o)
		touched = append(touched, o)
	}
	s.synced = true
	s.mu.Unlock()
	s.onChange(touched, true)
	return nil
}

// Resync is a no-op: nothing downstream needs periodic replays.
func (s *store) Resync() error { return nil }

func (s *store) reindex(key string, o runtime.Object) {
	if s.indexOf == nil || o == nil {
		return
	}
	v := s.indexOf(o)
	if s.index[v] == nil {
		s.index[v] = map[string]runtime.Object{}
	}
	s.index[v][key] = o
}

func (s *store) unindex(key string, o runtime.Object) {
	if s.indexOf == nil || o == nil {
		return
	}
	v := s.indexOf(o)
	delete(s.index[v], key)
	if len(s.index[v]) == 0 {
		delete(s.index, v)
	}
}

// get returns the object with key namespace/name (or name), nil if absent.
func (s *store) get(key string) runtime.Object {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.items[key]
}

// byIndex returns the objects whose index value is v.
func (s *store) byIndex(v string) []runtime.Object {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]runtime.Object, 0, len(s.index[v]))
	for _, o := range s.index[v] {
		out = append(out, o)
	}
	return out
}

// list returns every object.
func (s *store) list() []runtime.Object {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]runtime.Object, 0, len(s.items))
	for _, o := range s.items {
		out = append(out, o)
	}
	return out
}

// relistCount is how many re-lists (Replaces) have landed.
func (s *store) relistCount() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.relists
}

func (s *store) hasSynced() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.synced
}

func nonNil(objs ...runtime.Object) []runtime.Object {
	out := objs[:0]
	for _, o := range objs {
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}
