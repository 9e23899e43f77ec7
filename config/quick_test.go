package config

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// yamlItem is what yaml.v3 makes of one list item starting on the file's line `line`: the
// parse quickItem stands in for.
func yamlItem(text []byte, line int) *yaml.Node {
	l := &itemList{data: text, items: []chunk{{0, len(text), line}}}
	return l.item(0)
}

// nodeDiff is the first difference between two trees in what the decoder may read, or "".
func nodeDiff(a, b *yaml.Node, path string) string {
	switch {
	case a == nil || b == nil:
		if a != b {
			return fmt.Sprintf("%s: one is nil (%v, %v)", path, a == nil, b == nil)
		}
		return ""
	case a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.Value != b.Value ||
		a.Line != b.Line || a.Column != b.Column || a.Anchor != b.Anchor || a.Alias != b.Alias ||
		len(a.Content) != len(b.Content):
		return fmt.Sprintf("%s: kind %v/%v style %v/%v tag %q/%q value %q/%q at %d:%d/%d:%d, %d/%d children",
			path, a.Kind, b.Kind, a.Style, b.Style, a.Tag, b.Tag, a.Value, b.Value,
			a.Line, a.Column, b.Line, b.Column, len(a.Content), len(b.Content))
	}
	for i := range a.Content {
		if d := nodeDiff(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", path, i)); d != "" {
			return d
		}
	}
	return ""
}

// checkQuick fails t when quickItem accepts text and yaml.v3 refuses it or makes another
// tree of it. It reports whether quickItem accepted.
func checkQuick(t *testing.T, text string, scratch *quickScratch) bool {
	t.Helper()
	const line = 7
	q := quickItem([]byte(text), line, scratch)
	if q == nil {
		return false
	}
	y := yamlItem([]byte(text), line)
	if y == nil {
		t.Fatalf("quickItem accepts what yaml.v3 refuses as one item:\n%s", text)
	}
	if d := nodeDiff(q, y, "item"); d != "" {
		t.Fatalf("quickItem and yaml.v3 differ (quick/yaml) %s in:\n%s", d, text)
	}
	return true
}

// Scalars of the quick part that resolve to every tag, and the marks the scanner must get
// right (':' in IPv6 addresses and URLs, spaces inside a scalar, a leading '-').
var quickScalars = []string{
	"web", "10.1.0.1", "fd00::1", "2001:db8::10:1", "fd00::1:2", "1000", "0", "-1", "+5",
	"0x1F", "0o17", "017", "1_000", "1.5", "-2.5e3", ".inf", "-.inf", ".nan", "1e3", "true",
	"false", "yes", "No", "on", "OFF", "null", "Null", "~", "wrr", "a b", "a - b", "http://x/y",
	"a:b", "=", "_x", "a.b.c", "10s", "1m30s", "2026-12-07", "1:30", "y", "n", "-x", "a/b/c",
}

var quickKeys = []string{"name", "vip", "port", "backends", "address", "weight", "ipvs",
	"scheduler", "a b", "1", "true", "x.y", "kubernetes", "~", "null"}

// quickGen writes random items in the quick part of YAML.
type quickGen struct{ r *rand.Rand }

func (g quickGen) scalar() string { return quickScalars[g.r.IntN(len(quickScalars))] }

// flow is a flow collection or a scalar on one line, depth levels deep at most.
func (g quickGen) flow(depth int) string {
	switch k := g.r.IntN(4); {
	case depth == 0 || k == 0:
		return g.scalar()
	case k == 1:
		n := g.r.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = g.flow(depth - 1)
		}
		return "[" + g.sp() + strings.Join(parts, ","+g.sp()) + g.sp() + "]"
	default:
		n := g.r.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = quickKeys[g.r.IntN(len(quickKeys))] + ":" + " " + g.sp() + g.flow(depth-1)
		}
		return "{" + g.sp() + strings.Join(parts, ","+g.sp()) + g.sp() + "}"
	}
}

func (g quickGen) sp() string { return strings.Repeat(" ", g.r.IntN(3)/2) }

// comment is an optional comment after a line's content.
func (g quickGen) comment() string {
	if g.r.IntN(6) == 0 {
		return strings.Repeat(" ", 1+g.r.IntN(2)) + "# note: x, [y]"
	}
	return ""
}

// block writes the lines of a node in column col; the caller may put the first line after a
// key or a "- ".
func (g quickGen) block(col, depth int) []string {
	pad := strings.Repeat(" ", col)
	switch k := g.r.IntN(5); {
	case depth == 0 || k == 0:
		return []string{pad + g.flow(depth) + g.comment()}
	case k == 1:
		var lines []string
		for range 1 + g.r.IntN(3) {
			lines = append(lines, g.entry(col, depth-1)...)
		}
		return lines
	default:
		var lines []string
		for range 1 + g.r.IntN(4) {
			key := pad + quickKeys[g.r.IntN(len(quickKeys))] + ":"
			switch g.r.IntN(4) {
			case 0: // a block mapping or a sequence below
				lines = append(lines, key+g.comment())
				sub := col + 1 + g.r.IntN(3)
				if g.r.IntN(2) == 0 {
					// A sequence in the key's column, or indented.
					lines = append(lines, g.entry(col+g.r.IntN(2)*2, depth-1)...)
					continue
				}
				lines = append(lines, g.block(sub, depth-1)...)
			default:
				lines = append(lines, key+" "+g.sp()+g.flow(depth-1)+g.comment())
			}
			if g.r.IntN(8) == 0 {
				lines = append(lines, strings.Repeat(" ", g.r.IntN(6))+"# between")
			}
			if g.r.IntN(8) == 0 {
				lines = append(lines, "")
			}
		}
		return lines
	}
}

// entry writes a block sequence entry whose '-' is in column col.
func (g quickGen) entry(col, depth int) []string {
	after := 1 + g.r.IntN(3)/2
	lines := g.block(col+1+after, depth)
	lines[0] = strings.Repeat(" ", col) + "-" + strings.Repeat(" ", after) + lines[0][col+1+after:]
	return lines
}

func (g quickGen) item() string {
	return strings.Join(g.entry(2*g.r.IntN(2), 3), "\n") + "\n"
}

// mutate changes text at one random place with a character that is structure somewhere.
func mutate(r *rand.Rand, text string) string {
	marks := []string{"-", ":", ",", " ", "[", "]", "{", "}", "#", "\n", "'", "\"", "&a", "*a", "!", "|",
		">", "?", "%", "@", "\t", "x", "1", ": ", "- ", "  ", "<<", "---", "...", "é"}
	i := r.IntN(len(text) + 1)
	switch r.IntN(3) {
	case 0: // insert
		return text[:i] + marks[r.IntN(len(marks))] + text[i:]
	case 1: // delete
		j := min(len(text), i+1+r.IntN(3))
		return text[:i] + text[j:]
	default: // replace
		j := min(len(text), i+1)
		return text[:i] + marks[r.IntN(len(marks))] + text[j:]
	}
}

// TestQuickItemMatchesYAML holds quickItem to yaml.v3: every generated item of the quick
// part is accepted and gives yaml.v3's tree; after random edits an item is either refused or
// still gives yaml.v3's tree (and yaml.v3 takes it).
func TestQuickItemMatchesYAML(t *testing.T) {
	g := quickGen{rand.New(rand.NewPCG(1, 2))}
	scratch := &quickScratch{}
	accepted, mutants := 0, 0
	for range 3000 {
		text := g.item()
		if !checkQuick(t, text, scratch) {
			if yamlItem([]byte(text), 7) == nil {
				continue // the generator wrote something yaml.v3 refuses: not the quick part
			}
			t.Fatalf("quickItem refuses a generated item of the quick part:\n%s", text)
		}
		accepted++
		for range 10 {
			m := text
			for range 1 + g.r.IntN(3) {
				m = mutate(g.r, m)
			}
			if checkQuick(t, m, scratch) {
				mutants++
			}
		}
	}
	// The checks mean something only if both ways were taken often.
	if accepted < 2500 || mutants < 3000 || mutants > 27000 {
		t.Fatalf("accepted %d generated items of 3000 and %d of 30000 edited ones", accepted, mutants)
	}
	t.Logf("accepted %d generated items of 3000 and %d of 30000 edited ones", accepted, mutants)
}

// TestQuickItemRefuses lists what quickItem leaves to yaml.v3, each next to a twin it takes.
func TestQuickItemRefuses(t *testing.T) {
	for _, c := range []struct{ refused, taken string }{
		{"- {name: 'a'}\n", "- {name: a}\n"},
		{"- name: \"a\"\n", "- name: a\n"},
		{"- name: &x a\n", "- name: x a\n"},
		{"- name: !!str 1\n", "- name: str 1\n"},
		{"- name: |\n    a\n", "- name: a\n"},
		{"- name: a\n  port:\n", "- name: a\n  port: 1\n"},            // a key without a value
		{"- name: a b\n    c\n", "- name: a b c\n"},                   // a plain scalar over two lines
		{"- {name: a,\n   port: 1}\n", "- {name: a, port: 1}\n"},      // a flow mapping over two lines
		{"- name: a: b\n", "- name: a:b\n"},                           // mapping values not allowed here
		{"- name: a#b\n", "- name: a #b\n"},                           // '#' inside a scalar
		{"- name: a, b\n", "- name: a b\n"},                           // flow marks in a block scalar
		{"- {vip: fd00::, port: 1}\n", "- {vip: fd00::1, port: 1}\n"}, // ':' before a flow mark
		{"- {name: a, }\n", "- {name: a}\n"},                          // a trailing comma
		{"- [a: b]\n", "- [a, b]\n"},                                  // a pair in a flow sequence
		{"- name: é\n", "- name: e\n"},                                // columns count characters
		{"- name: a\n\tport: 1\n", "- name: a\n  port: 1\n"},
		{"- name: a\r\n", "- name: a\n"},
		{"-\n  name: a\n", "- name: a\n"}, // the content below the dash
		{"- name: a\n- name: b\n", "- name: a\n"},
		{"- a: 1\n  - b\n", "- a:\n  - b\n"},
		{"- <<: {a: 1}\n", "- a: {a: 1}\n"},
		{"- " + strings.Repeat("[", 70) + strings.Repeat("]", 70) + "\n", "- [[[]]]\n"},
	} {
		if n := quickItem([]byte(c.refused), 1, nil); n != nil {
			t.Errorf("quickItem takes %q", c.refused)
		}
		if !checkQuick(t, c.taken, nil) {
			t.Errorf("quickItem refuses %q", c.taken)
		}
	}
}

// FuzzQuickItem: whatever quickItem takes, yaml.v3 takes and makes the same tree of.
//
//	go test ./config -run '^$' -fuzz FuzzQuickItem -fuzztime 2m
func FuzzQuickItem(f *testing.F) {
	g := quickGen{rand.New(rand.NewPCG(3, 4))}
	for range 20 {
		f.Add(g.item())
	}
	f.Add("  - {name: s0-1000, vip: 10.100.0.1, port: 1000, backends: [{address: 10.1.0.1, weight: 2}]}\n")
	f.Fuzz(func(t *testing.T, text string) {
		checkQuick(t, text, nil)
	})
}
