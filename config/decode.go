package config

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ravel-lb/ravel/schema"
)

// pos is a position in the file, 1-based.
type pos struct{ line, col int }

// decoder is a strict YAML-node-to-struct decoder that speaks YAML vocabulary in its errors and
// remembers where every key path was written, so validation can point at lines too.
//
// yaml.v3's own KnownFields decoding is strict as well, but its messages name Go types
// ("field x not found in type schema.Node") and stop at the first error; ravel reports every
// error in the user's words.
type decoder struct {
	file  string
	pos   map[string]pos // key path -> position of its value
	errs  Findings
	warns Findings
	depth int
}

// maxDepth bounds nesting (and alias expansion) so a hostile file cannot exhaust the stack.
const maxDepth = 64

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, Finding{Severity: SeverityError, File: d.file, Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
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
	switch t {
	case reflect.TypeFor[schema.Kubernetes]():
		v.Set(reflect.ValueOf(schema.DefaultKubernetes()))
	case reflect.TypeFor[schema.Backend]():
		v.Set(reflect.ValueOf(schema.DefaultBackend()))
	}
	return v
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		d.errorf(n, path, "nesting is deeper than %d levels", maxDepth)
		return
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path)
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	d.pos[path] = pos{n.Line, n.Column}
	isNull := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"

	switch {
	case v.Type() == typeAddr:
		d.addr(n, v, path)
		return
	case v.Type() == typeDuration:
		d.duration(n, v, path)
		return
	}

	switch v.Kind() {
	case reflect.Pointer:
		if isNull {
			v.SetZero()
			return
		}
		// An empty string for an optional address means "unset", as in `gateway: ""`.
		if v.Type().Elem() == typeAddr && n.Kind == yaml.ScalarNode && n.Value == "" {
			v.SetZero()
			return
		}
		nv := reflect.New(v.Type().Elem())
		if !v.IsNil() {
			nv.Elem().Set(v.Elem())
		} else {
			nv.Elem().Set(defaults(v.Type().Elem()))
		}
		d.decode(n, nv.Elem(), path)
		v.Set(nv)
	case reflect.Struct:
		if isNull {
			return // `key:` with nothing keeps the defaults
		}
		d.structure(n, v, path)
	case reflect.Slice:
		if isNull {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "must be a list, not %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			s.Index(i).Set(defaults(v.Type().Elem()))
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if isNull {
			v.Set(reflect.MakeMap(v.Type()))
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "must be a mapping, not %s", describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.errorf(k, path, "keys must be plain strings")
				continue
			}
			kp := join(path, k.Value)
			if seen[k.Value] {
				d.errorf(k, kp, "duplicate key")
				continue
			}
			seen[k.Value] = true
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, kp)
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "must be a string, not %s", describe(n))
			return
		}
		if isNull {
			v.SetString("")
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errorf(n, path, "must be an integer, not %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
			d.errorf(n, path, "integer %s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n, path, "must be true or false, not %s", describe(n))
			return
		}
		b, _ := strconv.ParseBool(n.Value)
		v.SetBool(b)
	default:
		// Every type of package schema is handled above; this is a programming error.
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping, not %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain strings")
			continue
		}
		kp := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if s := suggest(k.Value, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(k, kp, "%s", msg)
			continue
		}
		if seen[k.Value] {
			d.errorf(k, kp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(idx), kp)
	}
}

func (d *decoder) addr(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be an IPv4 address, not %s", describe(n))
		return
	}
	a, err := netip.ParseAddr(n.Value)
	switch {
	case err != nil:
		d.errorf(n, path, "%q is not an IP address", n.Value)
	case !a.Is4():
		d.errorf(n, path, "%q is not an IPv4 address (only IPv4 is supported)", n.Value)
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		d.errorf(n, path, "%s cannot be used here (unspecified, multicast or broadcast)", a)
	default:
		v.Set(reflect.ValueOf(a))
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be a duration like 30s, not %s", describe(n))
		return
	}
	t, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		d.errorf(n, path, "%q is not a duration (write it like 500ms, 30s or 1m30s)", n.Value)
	case t < 0:
		d.errorf(n, path, "duration %s must not be negative", n.Value)
	default:
		v.SetInt(int64(t))
	}
}

// fieldsOf maps YAML key names to struct field indexes.
func fieldsOf(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// suggest returns the known key closest to an unknown one, if it is a likely typo.
func suggest(key string, fields map[string]int) string {
	best, bestD := "", 3
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if dd := editDistance(strings.ToLower(key), strings.ToLower(f)); dd < bestD {
			best, bestD = f, dd
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names what a node is, in YAML terms, for "must be X, not Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!int":
		return "the integer " + n.Value
	case "!!float":
		return "the number " + n.Value
	case "!!bool":
		return n.Value
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
