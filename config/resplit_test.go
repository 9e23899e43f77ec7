package config

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// resplitBases are files that cut: the chunk cases that do, every testdata and example file
// that does, and a longer list with items of one and of several lines.
func resplitBases(t *testing.T) map[string][]byte {
	bases := map[string][]byte{}
	for name, c := range chunkCases {
		if c.cut {
			bases[name] = []byte(c.text)
		}
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../examples/*.yaml")
	for _, path := range append(files, examples...) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, _, ok := splitServices(data); ok {
			bases[path] = data
		}
	}
	var b strings.Builder
	b.WriteString("apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: a, role: director}\nvipPool: [10.0.0.1]\nservices:\n")
	for i := range 40 {
		if i%3 == 0 {
			fmt.Fprintf(&b, "  - name: s%d\n    vip: 10.0.0.1\n    port: %d\n    # a comment\n    backends:\n      - {address: 10.1.0.1, weight: 2}\n\n", i, 1000+i)
		} else {
			fmt.Fprintf(&b, "  - {name: s%d, vip: 10.0.0.1, port: %d, backends: [{address: 10.1.0.1, weight: 1}]}\n", i, 1000+i)
		}
	}
	b.WriteString("resync: 1m\n")
	bases["long"] = []byte(b.String())
	return bases
}

// resplitPieces are what the random edits insert: pieces of the lines a list is made of, and
// of those that make the full split refuse a file or end the list.
var resplitPieces = []string{"\n", "\n\n", "  - ", "- ", "    ", "  ", "# c\n", "weight: 9", "9", "x",
	"  - {name: n, port: 1}\n", "    port: 2\n", "key: v\n", "services:\n", "---\n", "%YAML 1.2\n",
	"&a ", "*a", "\t", "\r", "<", "<<", "-\n", "  -\n", "...\n", "#"}

// edit returns data with one random edit: a piece inserted, a range deleted, or a range
// replaced by a piece, at a random place (most often inside the services list).
func edit(r *rand.Rand, data []byte) []byte {
	at := r.IntN(len(data) + 1)
	end := min(len(data), at+r.IntN(40))
	piece := resplitPieces[r.IntN(len(resplitPieces))]
	out := append([]byte(nil), data[:at]...)
	switch r.IntN(3) {
	case 0: // insert
		out = append(append(out, piece...), data[at:]...)
	case 1: // delete
		out = append(out, data[end:]...)
	default: // replace
		out = append(append(out, piece...), data[end:]...)
	}
	return out
}

// TestResplitMatchesSplit: cutting an edited file from the previous cut (resplit) must give
// what cutting it whole gives (splitServices): the same items, head and cut, and it must
// never accept a file that the full split refuses. Chains of random edits, so that a cut made
// by resplit is the start of the next one.
func TestResplitMatchesSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	handled, refused := 0, 0
	for name, base := range resplitBases(t) {
		for chain := range 60 {
			data := base
			_, list, _, _, ok := splitServices(data)
			if !ok {
				t.Fatalf("%s: the base does not cut", name)
			}
			for step := range 8 {
				prev := &cached{data: data, items: list.items, head: list.head, cut: list.cut}
				next := edit(r, data)
				got, ok := resplit(prev, next)
				_, want, _, _, wantOK := splitServices(next)
				if ok {
					handled++
					if !wantOK {
						t.Fatalf("%s chain %d step %d: resplit cut a file the full split refuses:\n%s", name, chain, step, next)
					}
					if fmt.Sprint(got.items) != fmt.Sprint(want.items) || got.cut != want.cut || !bytes.Equal(got.head, want.head) ||
						got.node.Line != want.node.Line || got.node.Column != want.node.Column {
						t.Fatalf("%s chain %d step %d: resplit %v %+v, full split %v %+v\nfile:\n%s", name, chain, step,
							got.items, got.cut, want.items, want.cut, next)
					}
					for i := range got.items {
						if i < got.sameBelow || got.sameFrom > 0 && i >= got.sameFrom {
							a, b := list.items[i], got.items[i]
							if a.line != b.line || !bytes.Equal(data[a.start:a.end], next[b.start:b.end]) {
								t.Fatalf("%s chain %d step %d: item %d is said unchanged (below %d, from %d) but is not", name, chain, step, i, got.sameBelow, got.sameFrom)
							}
						}
					}
				} else {
					refused++
				}
				if !wantOK {
					break // the chain goes on from files that cut
				}
				data, list = next, want
			}
		}
	}
	// Most random edits fall outside the items or break the cut; enough must not.
	if handled < 500 {
		t.Fatalf("resplit handled only %d edits (refused %d): the test checks too little", handled, refused)
	}
	t.Logf("resplit handled %d edits, left %d to the full split", handled, refused)
}

// TestResplitWeightEdit: the reload bench/scale.sh measures, one weight edited in a long
// file, is cut from the previous cut, and parses to the same config as a parse without cache.
func TestResplitWeightEdit(t *testing.T) {
	text := string(resplitBases(t)["long"])
	edited := strings.Replace(text, "port: 1005, backends: [{address: 10.1.0.1, weight: 1}", "port: 1005, backends: [{address: 10.1.0.1, weight: 7}", 1)
	if edited == text {
		t.Fatal("the edit did not apply")
	}
	_, list, _, _, _ := splitServices([]byte(text))
	if _, ok := resplit(&cached{data: []byte(text), items: list.items, head: list.head, cut: list.cut}, []byte(edited)); !ok {
		t.Fatal("a one-weight edit inside an item was not cut from the previous cut")
	}
	defer func(old int) { chunkMin = old }(chunkMin)
	chunkMin = 0
	c := &Cache{}
	if _, err := c.Parse("f.yaml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	cached, err := c.Parse("f.yaml", []byte(edited))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Bytes("f.yaml"); string(got) != edited {
		t.Fatalf("Bytes after the reload = %d bytes, want the edited file's %d", len(got), len(edited))
	}
	if c.Bytes("other.yaml") != nil || (*Cache)(nil).Bytes("f.yaml") != nil {
		t.Fatal("Bytes of another file, or of a nil cache, is not nil")
	}
	fresh, err := Parse("f.yaml", []byte(edited))
	if err != nil {
		t.Fatal(err)
	}
	if cached.Hash != fresh.Hash {
		t.Fatal("cached parse has another hash")
	}
	if d := cmp.Diff(fresh.ClusterConfig, cached.ClusterConfig, cmpAddr); d != "" {
		t.Fatalf("cached parse differs from a fresh one:\n%s", d)
	}
}

// crossPieces are edits that keep a service valid or make it clash with another: names,
// ports, VIPs and protocols of other services, weights.
var crossPieces = [][2]string{
	{"weight: 1}", "weight: 3}"},
	{"name: s5,", "name: s7,"},
	{"name: s5,", "name: s5b,"},
	{"port: 1005,", "port: 1007,"},
	{"port: 1005,", "port: 1099,"},
	{"vip: 10.0.0.1, port: 1005", "vip: 10.0.0.2, port: 1005"},
	{"name: s5,", "name: s5, protocols: [tcp, udp],"},
	{"name: s5,", "name: s5, protocols: [tcp, tcp],"},
	{"backends: [{address: 10.1.0.1, weight: 1}]}", "backends: [{address: 10.1.0.1}, {address: 10.1.0.1}]}"},
	{"backends: [{address: 10.1.0.1, weight: 1}]}", "kubernetes: {namespace: a, service: b}}"},
}

// TestCachedParseMatchesFresh: chains of edits, each parsed through the cache of the
// previous one and without a cache, must give the same config and the same findings,
// including the clashes across services that the shortcut of checkServices would miss if it
// were taken when it must not be. The shortcut must be taken for weight edits.
func TestCachedParseMatchesFresh(t *testing.T) {
	defer func(old int) { chunkMin = old }(chunkMin)
	chunkMin = 0
	base := string(resplitBases(t)["long"])
	r := rand.New(rand.NewPCG(3, 4))
	shared, steps := 0, 0
	for chain := range 40 {
		c := &Cache{}
		text := base
		if _, err := c.Parse("f.yaml", []byte(text)); err != nil {
			t.Fatal(err)
		}
		for step := range 6 {
			e := crossPieces[r.IntN(len(crossPieces))]
			// The one-line items are s1, s2, s4, s5, ...: edit s5 for the pieces that name
			// it, another one at random for the others.
			target := fmt.Sprintf("name: s%d,", []int{1, 2, 4, 8, 10, 11, 13, 14}[r.IntN(8)])
			if strings.Contains(e[0], "s5") || strings.Contains(e[0], "1005") {
				target = "name: s5,"
			}
			at := strings.Index(text, target)
			if at < 0 {
				continue // renamed by an earlier step
			}
			end := strings.Index(text[at:], "\n") + at
			next := text[:at] + strings.Replace(text[at:end], e[0], e[1], 1) + text[end:]
			got, gotF := outcome(c.Parse("f.yaml", []byte(next)))
			want, wantF := outcome(Parse("f.yaml", []byte(next)))
			steps++
			if gotF != wantF {
				t.Fatalf("chain %d step %d (%q → %q): findings differ\ncached:\n%s\nfresh:\n%s", chain, step, e[0], e[1], gotF, wantF)
			}
			if (got == nil) != (want == nil) || got != nil && cmp.Diff(want.ClusterConfig, got.ClusterConfig, cmpAddr) != "" {
				t.Fatalf("chain %d step %d (%q → %q): configs differ", chain, step, e[0], e[1])
			}
			if c.last != nil && c.last.sharedSeen {
				shared++
			}
			text = next
		}
	}
	if shared < 20 {
		t.Fatalf("the checks across services reused the previous record %d times of %d: the shortcut is not taken", shared, steps)
	}
	t.Logf("shortcut taken %d times of %d", shared, steps)
}

// TestCacheReadFileReusesOnlyFreeBytes: ReadFile reads into the bytes of a parse that a newer
// parse replaced, never into bytes a parse or the caller still holds. A sequence of reads and
// parses (edits, unchanged files, a file that cannot be cut, a file with findings) must parse
// as a fresh parse does, and the bytes the caller kept from its last read must not change
// under it.
func TestCacheReadFileReusesOnlyFreeBytes(t *testing.T) {
	defer func(old int) { chunkMin = old }(chunkMin)
	chunkMin = 0
	base := string(resplitBases(t)["long"])
	path := filepath.Join(t.TempDir(), "f.yaml")
	texts := []string{
		strings.Replace(base, "weight: 1}", "weight: 2}", 1),
		strings.Replace(base, "weight: 1}", "weight: 3}", 1),
		strings.Replace(base, "weight: 1}", "weight: 3}", 1),    // unchanged
		strings.Replace(base, "resync: 1m", "resync: &a 1m", 1), // an anchor: parsed whole
		strings.Replace(base, "weight: 1}", "weight: 2}", 2),
		strings.Replace(base, "port: 1004,", "port: 1005,", 1), // a clash: findings
		strings.Replace(base, "weight: 1}", "weight: 2}", 3),
		strings.Replace(base, "weight: 1}", "weight: 3}", 3),
	}
	c := &Cache{}
	if err := os.WriteFile(path, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	last, err := c.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Parse(path, last); err != nil {
		t.Fatal(err)
	}
	kept := string(last)
	reused := 0
	arrays := map[*byte]bool{unsafe.SliceData(last): true}
	for round := range 3 {
		for i, text := range texts {
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			data, err := c.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(last) != kept {
				t.Fatalf("round %d text %d: reading changed the bytes of the last parse", round, i)
			}
			if arrays[unsafe.SliceData(data)] {
				reused++
			}
			arrays[unsafe.SliceData(data)] = true
			if string(data) == kept {
				continue // unchanged: not parsed, as the Reloader does
			}
			got, gotF := outcome(c.Parse(path, data))
			want, wantF := outcome(Parse(path, []byte(text)))
			if gotF != wantF || (got == nil) != (want == nil) || got != nil && cmp.Diff(want.ClusterConfig, got.ClusterConfig, cmpAddr) != "" {
				t.Fatalf("round %d text %d: the parse through the cache differs from a fresh one:\n%s\n%s", round, i, gotF, wantF)
			}
			last, kept = data, text
		}
	}
	if reused == 0 {
		t.Fatal("ReadFile never read into the bytes of a replaced parse")
	}
}
