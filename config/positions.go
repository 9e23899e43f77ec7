package config

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Checks that run after decoding (field rules, cross-field rules, normalization) name a key path
// and need to know where it was written. Rather than remembering a position for every key while
// decoding, they walk the YAML tree along the path when they report something: findings are
// few, keys are many.

// seg is one step of a key path: a key, or an index when key is "".
type seg struct {
	key string
	idx int
}

func (d *decoder) push(key string)         { d.path = append(d.path, seg{key: key}) }
func (d *decoder) pushIndex(i int)         { d.path = append(d.path, seg{idx: i}) }
func (d *decoder) pop()                    { d.path = d.path[:len(d.path)-1] }
func (d *decoder) here() string            { return formatPath(d.path) }
func (d *decoder) hereKey(k string) string { return join(d.here(), k) }

// formatPath writes a key path in YAML vocabulary: services[0].ipvs.scheduler.
func formatPath(path []seg) string {
	p := ""
	for _, s := range path {
		if s.key == "" {
			p = index(p, s.idx)
		} else {
			p = join(p, s.key)
		}
	}
	return p
}

// parsePath splits a key path as join and index write it: node.role, services[3].port,
// ipvsSysctls["a.b"].
func parsePath(p string) []seg {
	var out []seg
	for p != "" {
		switch {
		case strings.HasPrefix(p, "[\""):
			q, err := strconv.QuotedPrefix(p[1:])
			if err != nil {
				return out
			}
			k, _ := strconv.Unquote(q)
			out = append(out, seg{key: k})
			p = strings.TrimPrefix(p[1+len(q):], "]")
		case p[0] == '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return out
			}
			i, err := strconv.Atoi(p[1:end])
			if err != nil {
				return out
			}
			out = append(out, seg{idx: i})
			p = p[end+1:]
		case p[0] == '.':
			p = p[1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			out = append(out, seg{key: p[:end]})
			p = p[end:]
		}
	}
	return out
}

// lookup walks from the document's top mapping along path. It returns the key and value nodes
// of the deepest step it could take (key is nil for a list element or the top), and whether it
// reached the end of the path.
func (d *decoder) lookup(path string) (key, value *yaml.Node, complete bool) {
	value = d.root
	if value == nil {
		return nil, nil, false
	}
	for _, s := range parsePath(path) {
		n := deref(value)
		var k, v *yaml.Node
		switch {
		case s.key != "" && n.Kind == yaml.MappingNode:
			k, v = findKey(n, s.key, 0)
		case s.key == "" && d.chunks != nil && n == d.chunks.node && s.idx < len(d.chunks.items):
			v = d.chunks.tree(s.idx)
		case s.key == "" && n.Kind == yaml.SequenceNode && s.idx < len(n.Content):
			v = n.Content[s.idx]
		}
		if v == nil {
			return key, value, false
		}
		key, value = k, v
	}
	return key, value, true
}

// findKey finds key in mapping m, or in what m merges (the first occurrence wins, as decode
// keeps the first of duplicate keys).
func findKey(m *yaml.Node, key string, depth int) (k, v *yaml.Node) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch c := m.Content[i]; {
		case isMerge(c):
			merges = append(merges, m.Content[i+1])
		case c.Kind == yaml.ScalarNode && c.Value == key:
			return c, m.Content[i+1]
		}
	}
	if depth >= maxDepth {
		return nil, nil
	}
	for _, mv := range merges {
		mv = deref(mv)
		srcs := []*yaml.Node{mv}
		if mv.Kind == yaml.SequenceNode {
			srcs = mv.Content
		}
		for _, src := range srcs {
			if src = deref(src); src.Kind == yaml.MappingNode {
				if k, v := findKey(src, key, depth+1); v != nil {
					return k, v
				}
			}
		}
	}
	return nil, nil
}

// at returns where the value at path was written, or where its closest written ancestor was.
func (d *decoder) at(path string) (line, col int) {
	_, v, _ := d.lookup(path)
	if v == nil {
		return 1, 1
	}
	v = deref(v)
	return v.Line, v.Column
}

// atKey is at for findings about a key itself (a sysctl name): the key's position.
func (d *decoder) atKey(path string) (line, col int) {
	k, v, complete := d.lookup(path)
	if complete && k != nil {
		return k.Line, k.Column
	}
	if v == nil {
		return 1, 1
	}
	return v.Line, v.Column
}

// written reports whether path was given a value in the file (a key with no value is not).
func (d *decoder) written(path string) bool {
	_, v, complete := d.lookup(path)
	return complete && !isNull(deref(v))
}

// isBad reports whether path or one of its ancestors failed to decode.
func (d *decoder) isBad(path string) bool {
	if len(d.bad) == 0 {
		return false
	}
	for p, ok := path, true; ok; p, ok = parent(p) {
		if d.bad[p] {
			return true
		}
	}
	return false
}

// parent returns the path one level up ("services[0].port" -> "services[0]" -> "services"),
// and false at the top.
func parent(p string) (string, bool) {
	segs := parsePath(p)
	if len(segs) == 0 {
		return "", false
	}
	return formatPath(segs[:len(segs)-1]), true
}
