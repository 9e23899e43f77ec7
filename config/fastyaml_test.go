package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkFast fails when fastParse accepts data but yaml.v3 refuses it or builds another tree.
func checkFast(t *testing.T, data []byte) (accepted bool) {
	t.Helper()
	got, nodes, ok := fastParse(data)
	if !ok {
		return false
	}
	if n, _ := countNodes(got, 0); n != nodes {
		t.Fatalf("fastParse counted %d nodes, the tree has %d", nodes, n)
	}
	want, extra, err := parseDocs(data)
	if err != nil || extra != nil || want == nil {
		t.Fatalf("fastParse accepted what yaml.v3 refuses (%v):\n%s", err, data)
	}
	if at := sameTree(want, got, ""); at != "" {
		t.Fatalf("fastParse differs from yaml.v3 at %s\n%s", at, data)
	}
	return true
}

// fastSeeds are plain YAML documents, valid and not, around the edges of what fastParse takes.
var fastSeeds = []string{
	"a: 1\nb:\nc:   # x\n  - x\nd:\n- y\ne: [a,b ,  c ]  \nf: {a: b,c: [d]}\ng: -1\nh: a b  c\n",
	"  a: 1\n  b:\n",
	"-\n  - b\n- k: v\n  j:\n- [ ]\n- {}\n",
	"k:\n  - a\n  - b\nz: 1",
	"a:\n    b: 1\n  c: 2\n",
	"a: 1\n- b\n",
	"a: b: c\n",
	"a: [b, c,]\n",
	"a: {b: }\n",
	"a: x\n  y\n",
	"- - a\n",
	"a:\n-\n",
	"1: 2\n~: null\ntrue: false\n0x10: 1.5e3\n",
	"a: 1 # c\n# d\n\n   # e\nb: 2",
}

func TestFastParseMatchesYAMLv3(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../examples/*.yaml")
	accepted := 0
	for _, f := range append(files, examples...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if checkFast(t, data) {
			accepted++
		}
	}
	if accepted < 20 {
		t.Errorf("fastParse accepted only %d of the testdata and example files", accepted)
	}
	if !checkFast(t, generateServices(10000)) {
		t.Error("fastParse refuses the generated 10,000-service file")
	}
	for _, doc := range fastSeeds {
		checkFast(t, []byte(doc))
	}
	var deep strings.Builder // lists and mappings nested 400 deep
	for i := range 200 {
		deep.WriteString(strings.Repeat(" ", 2*i) + "- a:\n")
	}
	for _, doc := range []string{deep.String(), "a: \"q\"\n", "a: &x 1\n", "a: |\n  x\n", "--- \na: 1\n", "a:\tb\n", "a: b#c\n", "<<: {a: b}\n", "a: é\n"} {
		if _, _, ok := fastParse([]byte(doc)); ok {
			t.Errorf("fastParse accepted %q", doc)
		}
	}
}

// FuzzFastParse looks for a file that fastParse accepts and yaml.v3 refuses or reads
// differently. FuzzParse checks the same on every input; this target starts from plain YAML,
// so that most of what it tries is in the part fastParse takes.
//
//	go test ./config -run='^$' -fuzz=FuzzFastParse -fuzztime=3m
func FuzzFastParse(f *testing.F) {
	for _, doc := range fastSeeds {
		f.Add([]byte(doc))
	}
	f.Add(generateServices(3))
	files, _ := filepath.Glob("testdata/*.good.yaml")
	for _, path := range files {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFast(t, data) })
}
