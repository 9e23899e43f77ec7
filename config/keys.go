package config

import (
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// fields maps YAML key names to struct field indexes.
type fields struct {
	index map[string]int
	names []string // sorted, for suggestions
}

var fieldCache sync.Map // reflect.Type -> *fields

func fieldsOf(t reflect.Type) *fields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*fields)
	}
	f := &fields{index: map[string]int{}}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			f.index[name] = i
			f.names = append(f.names, name)
		}
	}
	sort.Strings(f.names)
	fieldCache.Store(t, f)
	return f
}

// suggest returns the known key closest to an unknown one, if it is a likely typo.
func suggest(key string, names []string) string {
	best, bestD := "", 3
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
	return quote(n.Value)
}

// quote quotes a value from the file for a message, cut to 40 bytes on a rune boundary.
func quote(v string) string {
	if len(v) > 40 {
		cut := 40
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		return strconv.Quote(v[:cut]) + "…"
	}
	return strconv.Quote(v)
}

var (
	rePlainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	reDigits   = regexp.MustCompile(`^[-+]?[0-9][0-9_]*$`)
	reHostname = regexp.MustCompile(`^[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)*\.?$`)
)

// join appends a key to a path: "node" + "role" = "node.role". A key that is not a plain word
// is quoted, so that a sysctl named "a.b" reads `ipvsSysctls["a.b"]`, not `ipvsSysctls.a.b`.
func join(path, key string) string {
	if !rePlainKey.MatchString(key) {
		return path + "[" + quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// index appends a list index to a path: "services" + 3 = "services[3]".
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// parseDuration is time.ParseDuration; a separate name keeps the YAML vocabulary of durations
// (Go's syntax: 500ms, 30s, 1m30s, 2h) in one place.
func parseDuration(s string) (time.Duration, error) { return time.ParseDuration(s) }
