package config

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ravel-lb/ravel/schema"
)

// decoder is a strict YAML-node-to-struct decoder that speaks YAML vocabulary in its errors.
// Checks after decoding find where a key path was written by walking the YAML tree again
// (positions.go), so decoding itself builds no path strings and no position index: a file of
// 10,000 services decodes without a map entry per key.
//
// yaml.v3's own KnownFields decoding is strict as well, but its messages name Go types
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
}

// maxDepth bounds nesting (and alias cycles) so a hostile file cannot exhaust the stack.
const maxDepth = 64

// maxErrors bounds the findings of one file; the rest are counted.
const maxErrors = 10000

func newDecoder(file string) *decoder {
	return &decoder{file: file, bad: map[string]bool{}}
}

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

// fail reports that the value at the current path could not be decoded; later checks of that
// path (and of the keys under it) are skipped, since they would only repeat the same mistake.
func (d *decoder) fail(n *yaml.Node, format string, args ...any) {
	d.failAt(n, d.here(), format, args...)
}

func (d *decoder) failAt(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.add(Finding{Severity: SeverityError, File: d.file, Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

// errorf reports an error at node n without marking its path as undecodable.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.add(Finding{Severity: SeverityError, File: d.file, Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) add(f Finding) {
	if len(d.errs) >= maxErrors {
		d.dropped++
		return
	}
	d.errs = append(d.errs, f)
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
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		d.fail(n, "nesting is deeper than %d levels", maxDepth)
		return
	}
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
	case reflect.Int:
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

func (d *decoder) integer(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, "must be an integer, not %s", describe(n))
		return
	}
	tag := n.ShortTag()
	// yaml.v3 tags an integer too large for 64 bits as a float.
	if tag == "!!float" && reDigits.MatchString(n.Value) {
		d.fail(n, "integer %s is out of range", n.Value)
		return
	}
	if tag != "!!int" {
		d.fail(n, "must be an integer, not %s", describe(n))
		return
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
		d.fail(n, "integer %s is out of range", n.Value)
		return
	}
	v.SetInt(i)
}

// addrError is the reason netip gives, without its "ParseAddr(...): " prefix.
func addrError(err error) string {
	s := err.Error()
	if i := strings.Index(s, "): "); i >= 0 {
		s = s[i+3:]
	}
	return s
}

func (d *decoder) addr(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.fail(n, "must be an IPv4 address, not %s", describe(n))
		return
	}
	a, err := netip.ParseAddr(n.Value)
	switch {
	case err != nil && strings.Contains(n.Value, "/"):
		d.fail(n, "%s is not an IP address: write the address alone, without a prefix length", quote(n.Value))
	case err != nil && reHostname.MatchString(n.Value):
		d.fail(n, "%s is not an IP address (host names are not resolved)", quote(n.Value))
	case err != nil:
		d.fail(n, "%s is not an IP address: %s", quote(n.Value), addrError(err))
	case !a.Is4():
		d.fail(n, "%s is not an IPv4 address (only IPv4 is supported)", quote(n.Value))
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		d.fail(n, "%s cannot be used here (unspecified, multicast or broadcast)", a)
	default:
		*v.Addr().Interface().(*netip.Addr) = a // no boxing of a in an interface
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, "must be a duration like 30s, not %s", describe(n))
		return
	}
	if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" {
		d.fail(n, "must be a duration with a unit, like %ss, not %s", n.Value, describe(n))
		return
	}
	t, err := parseDuration(n.Value)
	switch {
	case err != nil:
		d.fail(n, "%s is not a duration (write it like 500ms, 30s or 1m30s)", quote(n.Value))
	case t < 0:
		d.fail(n, "duration %s must not be negative", n.Value)
	default:
		v.SetInt(int64(t))
	}
}
