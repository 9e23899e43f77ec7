package config

import (
	"slices"

	"go.yaml.in/yaml/v3"
)

// The keys of a mapping, with YAML merge keys resolved.

// entry is one key and its value in a mapping, after merge keys are resolved.
type entry struct{ key, value *yaml.Node }

// isMerge reports whether k is YAML's merge key `<<` (plain, not quoted).
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// entries returns the keys of the mapping n in file order, followed by the keys that merge keys
// (`<<: *base` or `<<: [*a, *b]`) bring in and that the mapping does not set itself. As in YAML,
// a key written in the mapping wins over a merged one, and an earlier merged mapping wins over a
// later one; a merged value replaces the whole value (no deep merge). It reports duplicate
// keys, keys that are not plain scalars, and a node that is not a mapping (returning nil).
func (d *decoder) entries(n *yaml.Node) []entry {
	if n.Kind != yaml.MappingNode {
		d.fail(n, "must be a mapping, not %s", describe(n))
		return nil
	}
	out := entrySet{list: make([]entry, 0, len(n.Content)/2)}
	var merges []*yaml.Node
	var firstMerge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			if len(merges) > 0 {
				// `<<` is a key like any other: merge several mappings with `<<: [*a, *b]`.
				d.errorf(k, d.hereKey("<<"), "duplicate key (first written on line %d); merge several mappings with <<: [*a, *b]", firstMerge.Line)
				continue
			}
			firstMerge = k
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, "keys must be plain strings, not %s", describe(k))
			continue
		}
		if first := out.find(k.Value); first != nil {
			// Not d.fail: the first value is still decoded and checked.
			d.errorf(k, d.hereKey(k.Value), "duplicate key (first written on line %d)", first.key.Line)
			continue
		}
		out.add(entry{k, v})
	}
	for _, m := range merges {
		for _, src := range d.mergeSources(m) {
			if d.overflow {
				return out.list
			}
			if slices.Contains(d.merging, src) || src == n {
				d.fail(m, "a merge key (<<) merges a mapping into itself")
				return out.list
			}
			if len(d.merging) >= maxDepth {
				d.fail(m, "merge keys nest deeper than %d levels", maxDepth)
				return out.list
			}
			for _, e := range d.merged(n, src) {
				if out.find(e.key.Value) == nil {
					out.add(e)
				}
			}
		}
	}
	return out.list
}

// merged returns the entries of src, a mapping merged into n. They are computed once per
// mapping: anchors that merge each other in layers ("billion laughs") then cost as much as
// the file is long, and a mistake in a merged mapping is reported once.
func (d *decoder) merged(n, src *yaml.Node) []entry {
	if es, ok := d.mergeMemo[src]; ok {
		return es
	}
	d.merging = append(d.merging, n)
	es := d.entries(src)
	d.merging = d.merging[:len(d.merging)-1]
	if d.mergeMemo == nil {
		d.mergeMemo = map[*yaml.Node][]entry{}
	}
	d.mergeMemo[src] = es
	return es
}

// mergeSources returns the mappings that the value of a merge key names.
func (d *decoder) mergeSources(v *yaml.Node) []*yaml.Node {
	if d.overflow {
		return nil
	}
	if d.budget--; d.budget < 0 {
		d.overflow = true
		d.fail(v, "the file expands to too many values through aliases and merge keys")
		return nil
	}
	v = deref(v)
	switch {
	case v.Kind == yaml.MappingNode:
		return []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		srcs := make([]*yaml.Node, 0, len(v.Content))
		for _, c := range v.Content {
			if c = deref(c); c.Kind != yaml.MappingNode {
				d.fail(c, "a merge key (<<) takes a mapping or a list of mappings, not a list of %s", describe(c))
				return nil
			}
			srcs = append(srcs, c)
		}
		return srcs
	}
	d.fail(v, "a merge key (<<) takes a mapping or a list of mappings, not %s", describe(v))
	return nil
}

// deref follows aliases. The parser never creates an alias of an alias, but a hostile file
// must not make this loop forever.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// entrySet is a list of entries with a lookup by key; small mappings (most of them) are
// searched linearly, large ones (a long nodeSelector, a hostile file) through a map.
type entrySet struct {
	list  []entry
	index map[string]int
}

const linearEntries = 16

func (s *entrySet) find(key string) *entry {
	if s.index != nil {
		if i, ok := s.index[key]; ok {
			return &s.list[i]
		}
		return nil
	}
	for i := range s.list {
		if s.list[i].key.Value == key {
			return &s.list[i]
		}
	}
	return nil
}

func (s *entrySet) add(e entry) {
	s.list = append(s.list, e)
	switch {
	case s.index != nil:
		s.index[e.key.Value] = len(s.list) - 1
	case len(s.list) > linearEntries:
		s.index = make(map[string]int, 2*len(s.list))
		for i, x := range s.list {
			s.index[x.key.Value] = i
		}
	}
}
