package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/ravel-lb/ravel/schema"
)

// decoder is a strict YAML-node-to-struct decoder that speaks YAML vocabulary in its errors.
// Checks after decoding find where a key path was written by walking the YAML tree again
// (positions.go), so decoding itself builds no path strings and no position index: a file of
// 10,000 services decodes without a map entry per key.
//
// yaml/v3's own KnownFields decoding is strict as well, but its messages name Go types
// ("field x not found in type schema.Node") and stop at the first error; ravel reports every
// error in the user's words.
//
// The meaning of a key written with no value (`key:` or `key: ~`) is the same as leaving it
// out: it keeps its default. The one exception is a section that is a pointer in the Go types
// (the top-level kubernetes, a service's kubernetes and ipvs): written empty, it is present with
// its defaults, as with `{}`.
type decoder struct {
	file  string
	root  *yaml.Node      // the document's top mapping, for position lookups
	path  []seg           // where decode is, as a stack; formatted only for findings
	bad   map[string]bool // key paths whose value could not be decoded
	errs  Findings
	warns Findings
	depth int
	// budget is how many more nodes decode may visit. Aliases and merge keys can make a small
	// file expand exponentially ("billion laughs"); the budget turns that into one error.
	budget   int
	overflow bool
	dropped  int          // errors beyond maxErrors
	merging  []*yaml.Node // mappings whose merge keys are being resolved, to catch cycles
	// mergeMemo holds the entries of each mapping merged somewhere, computed once.
	mergeMemo map[*yaml.Node][]entry
	// parallel lets a long services list be decoded on several CPUs (parallel.go).
	parallel bool
	// chunks is the services list of a long file, parsed an item at a time (chunks.go).
	chunks *itemList
}

// maxDepth bounds nesting (and alias cycles) so a hostile file cannot exhaust the stack.
const maxDepth = 64

// maxErrors bounds the findings of one file; the rest are counted.
const maxErrors = 10000

func newDecoder(file string) *decoder {
	return &decoder{file: file, bad: map[string]bool{}}
}

var (
	typeAddr     = reflect.TypeFor[netip.Addr]()
	typeDuration = reflect.TypeFor[schema.Duration]()
)

// defaults returns the value a freshly allocated object of type t starts from. This is where
// "defaults are declared values applied before strict decoding" happens for nested objects that
// the file creates (a kubernetes section, a backend).
func defaults(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	if def, ok := schema.DefaultFor(t); ok {
		v.Set(def)
	}
	return v
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func (d *decoder) decode(n *yaml.Node, v reflect.Value) {
	if d.overflow {
		return
	}
	if d.budget--; d.budget < 0 {
		d.overflow = true
		d.fail(n, "the file expands to too many values through aliases and merge keys")
		return
	}
	if d.depth >= maxDepth {
		d.fail(n, "nesting is deeper than %d levels", maxDepth)
		return
	}
	d.depth++
	d.value(n, v)
	d.depth--
}

// value is decode at one level of nesting.
func (d *decoder) value(n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v)
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	null := isNull(n)

	switch v.Type() {
	case typeAddr:
		d.addr(n, v)
		return
	case typeDuration:
		if !null {
			d.duration(n, v)
		}
		return
	}

	switch v.Kind() {
	case reflect.Pointer:
		et := v.Type().Elem()
		if null {
			// An empty section is present with its defaults; any other empty value is unset.
			if et.Kind() == reflect.Struct && et != typeAddr && v.IsNil() {
				nv := reflect.New(et)
				nv.Elem().Set(defaults(et))
				v.Set(nv)
			}
			return
		}
		// An empty string for an optional address means "unset", as in `gateway: ""`.
		if et == typeAddr && n.Kind == yaml.ScalarNode && n.Value == "" {
			v.SetZero()
			return
		}
		nv := reflect.New(et)
		if !v.IsNil() {
			nv.Elem().Set(v.Elem())
		} else {
			nv.Elem().Set(defaults(et))
		}
		d.decode(n, nv.Elem())
		v.Set(nv)
	case reflect.Struct:
		if !null {
			d.structure(n, v)
		}
	case reflect.Slice:
		if !null {
			d.list(n, v)
		}
	case reflect.Map:
		if !null {
			d.mapping(n, v)
		}
	case reflect.String:
		switch {
		case n.Kind != yaml.ScalarNode:
			d.fail(n, "must be a string, not %s", describe(n))
		case !null:
			v.SetString(n.Value)
		}
	case reflect.Int, reflect.Int64:
		if !null {
			d.integer(n, v)
		}
	case reflect.Bool:
		switch {
		case null:
		case n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool":
			d.fail(n, "must be true or false, not %s", describe(n))
		default:
			b, _ := strconv.ParseBool(n.Value)
			v.SetBool(b)
		}
	default:
		// Every type of package schema is handled above; this is a programming error.
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), d.here()))
	}
}

func (d *decoder) list(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "must be a list, not %s", describe(n))
		return
	}
	if d.chunks != nil && n == d.chunks.node {
		d.decodeChunked(v)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	if d.parallel && len(d.path) == 1 && d.path[0].key == "services" && len(n.Content) >= parallelMin {
		d.decodeServices(n.Content, s, parallelParts())
		v.Set(s)
		return
	}
	def, hasDef := schema.DefaultFor(v.Type().Elem())
	for i, c := range n.Content {
		e := s.Index(i)
		if hasDef {
			e.Set(def)
			if i+1 < len(n.Content) {
				def, _ = schema.DefaultFor(v.Type().Elem()) // a fresh one: defaults hold maps
			}
		}
		d.pushIndex(i)
		d.decode(c, e)
		d.pop()
	}
	v.Set(s)
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value) {
	fields := fieldsOf(v.Type())
	for _, e := range d.entries(n) {
		idx, ok := fields.index[e.key.Value]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", e.key.Value)
			if s := suggest(e.key.Value, fields.names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.failAt(e.key, d.hereKey(e.key.Value), "%s", msg)
			continue
		}
		d.push(e.key.Value)
		d.decode(e.value, v.Field(idx))
		d.pop()
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value) {
	entries := d.entries(n)
	if entries == nil && n.Kind != yaml.MappingNode {
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(entries))
	for _, e := range entries {
		val := reflect.New(v.Type().Elem()).Elem()
		d.push(e.key.Value)
		d.decode(e.value, val)
		d.pop()
		m.SetMapIndex(reflect.ValueOf(e.key.Value), val)
	}
	v.Set(m)
}
