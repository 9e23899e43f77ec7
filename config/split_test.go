package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

// ignoreComments compares YAML trees without comments: the loader never reads them, and a
// comment between two parts attaches to a different node.
var ignoreComments = cmpopts.IgnoreFields(yaml.Node{}, "HeadComment", "LineComment", "FootComment")

// checkSplit fails when parseSplit applies to data but builds another tree than one parse.
func checkSplit(t *testing.T, data []byte, parts int) (applied bool) {
	t.Helper()
	got, ok := parseSplit(data, parts)
	if !ok {
		return false
	}
	want, extra, err := parseDocs(data)
	if err != nil || extra != nil {
		t.Fatalf("parseSplit accepted a file that one parse refuses (%v, extra %v):\n%s", err, extra != nil, data)
	}
	if path := sameTree(want, got, ""); path != "" {
		if len(data) < 4096 {
			t.Fatalf("parseSplit differs from one parse at %s (-one +split):\n%s\n%s", path, cmp.Diff(want, got, ignoreComments), data)
		}
		t.Fatalf("parseSplit differs from one parse at %s", path)
	}
	return true
}

// sameTree compares two YAML trees, comments aside, and returns where they differ ("" if
// nowhere). cmp.Diff is too slow for a tree of half a million nodes.
func sameTree(a, b *yaml.Node, at string) string {
	if (a == nil) != (b == nil) {
		return at + ": nil"
	}
	if a == nil {
		return ""
	}
	if a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.Value != b.Value || a.Anchor != b.Anchor ||
		a.Line != b.Line || a.Column != b.Column || len(a.Content) != len(b.Content) {
		return fmt.Sprintf("%s: %+v != %+v", at, *a, *b)
	}
	if a.Kind == yaml.AliasNode {
		if p := sameTree(a.Alias, b.Alias, at+"*"); p != "" {
			return p
		}
	}
	for i := range a.Content {
		if p := sameTree(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", at, i)); p != "" {
			return p
		}
	}
	return ""
}

func TestSplitMatchesOneParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../examples/*.yaml")
	for _, f := range append(files, examples...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for parts := 2; parts <= 4; parts++ {
			checkSplit(t, data, parts)
		}
	}
	if !checkSplit(t, generateServices(2000), 2) || !checkSplit(t, generateServices(2000), 3) {
		t.Error("parseSplit does not apply to a generated file of 2,000 services")
	}
}

func TestSplitRefuses(t *testing.T) {
	head := "apiVersion: ravel/v1\nkind: ClusterConfig\n"
	items := strings.Repeat("  - {name: a, vip: 10.0.0.1, port: 80}\n", 8)
	for name, doc := range map[string]string{
		"inline list":      head + "services: [{name: a}, {name: b}, {name: c}, {name: d}]\n",
		"two keys":         head + "services:\n" + items + "services:\n" + items,
		"tab":              head + "services:\n" + items + "\t\n",
		"document marker":  head + "services:\n" + items + "---\n",
		"cross-part alias": head + "services:\n  - &a {name: a}\n" + items + "  - *a\n",
		"open flow":        head + "services:\n  - {name: a,\n" + items + "  }\n",
		"not a list":       head + "services:\n  name: a\n",
		"crlf":             strings.ReplaceAll(head+"services:\n"+items, "\n", "\r\n"),
	} {
		if _, ok := parseSplit([]byte(doc), 2); ok {
			// Applying is fine only if the result is right.
			checkSplit(t, []byte(doc), 2)
			if name != "open flow" && name != "cross-part alias" {
				t.Errorf("%s: parseSplit applied", name)
			}
		}
	}
	// A list at column 1, comments and blank lines between items, a key after the list.
	doc := head + "services:\n" + strings.Repeat("- name: a\n  port: 80\n\n# c\n", 6) + "resync: 1s\n"
	if !checkSplit(t, []byte(doc), 3) {
		t.Error("parseSplit did not apply to a list at column 1")
	}
}

// TestParallelMatchesSerial loads a long file with mistakes spread through it on every CPU and
// on one: the findings and the effective config must be the same.
func TestParallelMatchesSerial(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one CPU: nothing runs in parallel")
	}
	text := strings.Split(string(generateServices(2000)), "\n")
	for i := range text {
		switch {
		case i%4001 < 4 && strings.HasPrefix(text[i], "    port: "):
			text[i] = "    port: 70000"
		case i%3001 < 4 && strings.HasPrefix(text[i], "    vip: "):
			text[i] = "    vip: 10.99.0.1"
		case i%5003 < 8 && strings.HasPrefix(text[i], "    ipvs: "):
			text[i] = "    ipvs: {scheduler: fastest, flags: [sh-port], weight: 1}"
		}
	}
	data := []byte(strings.Join(text, "\n"))
	load := func(procs int) (*Config, *Errors) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		c, err := Parse("long.yaml", data)
		e, _ := err.(*Errors)
		return c, e
	}
	parC, parE := load(runtime.GOMAXPROCS(0))
	serC, serE := load(1)
	if parE == nil || serE == nil || len(serE.Errors) < 3 {
		t.Fatalf("want errors from both: %v / %v", parE, serE)
	}
	if d := cmp.Diff(lines(serE.Errors), lines(parE.Errors)); d != "" {
		t.Errorf("errors (-serial +parallel):\n%s", d)
	}
	if d := cmp.Diff(lines(serE.Warnings), lines(parE.Warnings)); d != "" {
		t.Errorf("warnings (-serial +parallel):\n%s", d)
	}
	if parC != nil || serC != nil {
		t.Error("a file with errors loaded")
	}

	good := generateServices(2000)
	par, _ := Parse("good.yaml", good)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ser, _ := Parse("good.yaml", good)
	if !reflect.DeepEqual(par, ser) {
		t.Error("the effective config differs between parallel and serial loading")
	}
}
