package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/internal/reflectfill"
	"github.com/ravel-lb/ravel/schema"
)

// parseWays parses data whole and, when the file can be cut, in chunks (every size counts as
// long), and returns how the two differ ("" when they do not) and whether it could be cut.
func parseWays(t testing.TB, name string, data []byte) (diff string, cut bool) {
	t.Helper()
	defer func(old int) { chunkMin = old }(chunkMin)
	chunkMin = len(data) + 1
	wc, wf := outcome(Parse(name, data))
	chunkMin = 0
	_, _, cut = parseChunked(data, nil)
	cc, cf := outcome(Parse(name, data))
	var d string
	if wc != nil && cc != nil {
		d = cmp.Diff(wc.ClusterConfig, cc.ClusterConfig, cmpAddr)
	}
	return d + cmp.Diff(wf, cf), cut
}

// outcome is what Parse returned: the config, and its warnings and hash or every finding.
func outcome(c *Config, err error) (*Config, string) {
	if err != nil {
		var e *Errors
		if !errors.As(err, &e) {
			return nil, "error " + err.Error()
		}
		return nil, fmt.Sprintf("errors\n%s\nwarnings\n%s", strings.Join(lines(e.Errors), "\n"), strings.Join(lines(e.Warnings), "\n"))
	}
	return c, fmt.Sprintf("warnings\n%s\nhash %x", strings.Join(lines(c.Warnings), "\n"), c.Hash)
}

// chunkCases are files written for the cut: where an item ends, what it refuses.
var chunkCases = map[string]struct {
	text string
	cut  bool
}{
	"items at column 1, keys after":          {cut: true, text: "apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: a, role: director}\nvipPool: [10.0.0.1]\nservices:\n- vip: 10.0.0.1\n  port: 80\n  backends: [{address: 10.1.0.1}]\n- vip: 10.0.0.1\n  port: 81\n  backends:\n  - address: 10.1.0.2\n    weight: 0\nresync: 1m\n"},
	"comments and blank lines between items": {cut: true, text: "apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: a, role: director}\nvipPool: [10.0.0.1]\nservices: # the list\n\n# first\n  - vip: 10.0.0.1\n    port: 80\n# a comment at column 1\n\n    backends: [{address: 10.1.0.1}]\n  # second\n  -\n    vip: 10.0.0.1\n    port: 81\n    name: |\n      a block\n      scalar\n    backends: [{address: 10.1.0.2}]\n\n# the end\nmetrics: {listen: \"\"}\n"},
	"findings inside items":                  {cut: true, text: "apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: a, role: director}\nvipPool: [10.0.0.1]\nservices:\n  - vip: 10.0.0.9\n    port: 0\n    backends: [{address: 10.1.0.1, weigth: 2}]\n  - port: 80\n    ipvs: {scheduler: nope}\n    backends: [{address: 10.1.0.1}, {address: 10.1.0.1}]\n  - 7\nresync: nope\n"},
	"a quoted value over the cut":            {cut: true, text: "apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: a, role: director}\nvipPool: [10.0.0.1]\nservices:\n  - name: \"one\n  - two\"\n    vip: 10.0.0.1\n    port: 80\n    backends: [{address: 10.1.0.1}]\n"},
	"a flow value over the cut":              {cut: true, text: "apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: a, role: director}\nvipPool: [10.0.0.1]\nservices:\n  - {vip: 10.0.0.1,\n  - port: 80, backends: [{address: 10.1.0.1}]}\n"},
	"services written twice":                 {text: "apiVersion: ravel/v1\nkind: ClusterConfig\nservices:\n  - port: 80\nservices:\n  - port: 81\n"},
	"a list in flow style":                   {text: "apiVersion: ravel/v1\nkind: ClusterConfig\nservices: [{port: 80}]\n"},
	"an anchor":                              {text: "apiVersion: ravel/v1\nkind: ClusterConfig\nservices:\n  - &a {port: 80}\n  - *a\n"},
	"a line between the indents":             {text: "apiVersion: ravel/v1\nkind: ClusterConfig\nservices:\n    - port: 80\n  x: 1\n"},
	"the key inside a quoted value":          {text: "apiVersion: ravel/v1\nkind: \"ClusterConfig\nservices:\n  - port: 80\n\"\n"},
	"a document marker":                      {text: "---\napiVersion: ravel/v1\nkind: ClusterConfig\nservices:\n  - port: 80\n"},
	"a scalar, not a list":                   {text: "apiVersion: ravel/v1\nkind: ClusterConfig\nservices:\n  port: 80\n"},
	"a tab":                                  {text: "apiVersion: ravel/v1\nkind: ClusterConfig\nservices:\n  - port:\t80\n"},
	"a flow mapping at the top":              {text: "{apiVersion: ravel/v1,\nservices:\n  - port: 80\n}\n"},
}

// TestChunkedParseMatchesWhole parses every testdata and example file, and the cases above,
// both ways: the configs, warnings and findings (with their positions) must be the same.
func TestChunkedParseMatchesWhole(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../examples/*.yaml")
	cut := 0
	for _, path := range append(files, examples...) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		d, ok := parseWays(t, path, data)
		if ok {
			cut++
		}
		if d != "" {
			t.Errorf("%s (cut %v): parsed in chunks it differs (-whole +chunks):\n%s", path, ok, d)
		}
	}
	if cut < 10 {
		t.Errorf("only %d testdata and example files could be cut: the test no longer compares much", cut)
	}
	for name, c := range chunkCases {
		d, ok := parseWays(t, "case.yaml", []byte(c.text))
		if ok != c.cut {
			t.Errorf("%s: cut %v, want %v", name, ok, c.cut)
		}
		if d != "" {
			t.Errorf("%s: parsed in chunks it differs (-whole +chunks):\n%s", name, d)
		}
	}
	if d, ok := parseWays(t, "gen.yaml", generateServices(1500)); !ok || d != "" {
		t.Errorf("1,500 generated services: cut %v; (-whole +chunks):\n%s", ok, d)
	}
}

// TestCacheReusesUnchangedServices: a reload of a long file with one weight edited decodes
// that one service again, and gives the config a fresh parse gives, however often the
// services reused were normalized before. (A Config is read-only: the next parse may share
// its services.)
func TestCacheReusesUnchangedServices(t *testing.T) {
	const n = 1200
	data := generateServices(n)
	if len(data) < chunkMin {
		t.Fatalf("the generated file (%d bytes) is below chunkMin", len(data))
	}
	cache := &Cache{}
	first, err := cache.Parse("f.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := cache.last.reused.Load(); got != 0 {
		t.Fatalf("the first parse reused %d services", got)
	}
	// Services 700's first backend: weight 3 → 9.
	at := bytes.Index(data, []byte("name: svc-700\n"))
	w := bytes.Index(data[at:], []byte("weight: 3"))
	edited := bytes.Clone(data)
	edited[at+w+len("weight: ")] = '9'
	for round := range 3 {
		got, err := cache.Parse("f.yaml", edited)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Parse("f.yaml", edited)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want.ClusterConfig, got.ClusterConfig, cmpAddr); d != "" {
			t.Fatalf("round %d: the cached parse differs from a fresh one (-fresh +cached):\n%s", round, d)
		}
		if *got.Services[700].Backends[0].Weight != 9 || *first.Services[700].Backends[0].Weight != 3 {
			t.Fatalf("round %d: weights %d (now) and %d (before)", round, *got.Services[700].Backends[0].Weight, *first.Services[700].Backends[0].Weight)
		}
		wantReused := int64(n - 1)
		if round > 0 {
			wantReused = n // the edited text is the previous parse's now
		}
		if r := cache.last.reused.Load(); r != wantReused {
			t.Errorf("round %d: %d services reused, want %d", round, r, wantReused)
		}
	}
	// The services parsed from the same text under the same rest of the file are the last
	// config's, shared (nothing writes into a config); under other defaults they are resolved
	// again, and give what a fresh parse gives.
	again, err := cache.Parse("f.yaml", edited)
	if err != nil {
		t.Fatal(err)
	}
	if last := cache.last; last == nil || !last.effOK[5] || last.kept[5] {
		t.Fatal("service 5 was not kept resolved, and only resolved (no second copy)")
	}
	before, err := cache.Parse("f.yaml", edited)
	if err != nil {
		t.Fatal(err)
	}
	if &before.Services[5].Backends[0] != &again.Services[5].Backends[0] || before.Services[5].IPVS != again.Services[5].IPVS {
		t.Error("an unchanged service under unchanged defaults was not shared")
	}
	otherDefaults := bytes.Replace(edited, []byte("protocols: [tcp]"), []byte("protocols: [udp]"), 1)
	got, err := cache.Parse("f.yaml", otherDefaults)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse("f.yaml", otherDefaults)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want.ClusterConfig, got.ClusterConfig, cmpAddr); d != "" {
		t.Fatalf("under other defaults the cached parse differs from a fresh one (-fresh +cached):\n%s", d)
	}
	if &got.Services[5].Backends[0] == &before.Services[5].Backends[0] {
		t.Error("under other defaults a service was shared, not resolved again")
	}
	// A service whose backends fail their checks is checked again on every parse: the same
	// bytes give the same findings, reused or not.
	at = bytes.Index(edited, []byte("name: svc-300\n"))
	dup := bytes.Clone(edited)
	copy(dup[at+bytes.Index(dup[at:], []byte("address: 10.2.")):], "address: 10.1.")
	for round := range 2 {
		_, err := cache.Parse("f.yaml", dup)
		if err == nil || !strings.Contains(err.Error(), "services[300].backends[1]: backend 10.1.") {
			t.Fatalf("round %d: a duplicate backend: %v", round, err)
		}
	}
	// Another file, or a line added at the top, reuses nothing.
	if _, err := cache.Parse("other.yaml", edited); err != nil || cache.last.reused.Load() != 0 {
		t.Errorf("another file: err %v, %d reused", err, cache.last.reused.Load())
	}
	shifted := append([]byte("# a line\n"), edited...)
	if _, err := cache.Parse("other.yaml", shifted); err != nil || cache.last.reused.Load() != 0 {
		t.Errorf("lines shifted: err %v, %d reused", err, cache.last.reused.Load())
	}
}

// TestCloneServiceSharesNothing fills every field of a service (by reflection, so a field
// added later is filled too), clones it, and checks the copy is equal and shares no pointer
// and no slice array with the original, but pointers to numbers (see cloneService).
func TestCloneServiceSharesNothing(t *testing.T) {
	var s schema.Service
	reflectfill.Fill(reflect.ValueOf(&s).Elem())
	c := cloneService(s)
	if d := cmp.Diff(s, c, cmpAddr); d != "" {
		t.Fatalf("the clone differs (-original +clone):\n%s", d)
	}
	shared := map[uintptr]string{}
	walkRefs(reflect.ValueOf(s), "service", func(p uintptr, path string) { shared[p] = path })
	walkRefs(reflect.ValueOf(c), "service", func(p uintptr, path string) {
		if was, ok := shared[p]; ok {
			t.Errorf("the clone's %s shares memory with the original's %s: cloneService misses a field", path, was)
		}
	})
}

// walkRefs calls fn with the address of every pointer target and slice array under v.
func walkRefs(v reflect.Value, path string, fn func(uintptr, string)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() && v.Elem().Kind() != reflect.Int {
			fn(v.Pointer(), path)
			walkRefs(v.Elem(), path, fn)
		}
	case reflect.Slice:
		if v.Len() > 0 {
			fn(v.Pointer(), path)
		}
		for i := range v.Len() {
			walkRefs(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case reflect.Map:
		if !v.IsNil() {
			fn(v.Pointer(), path)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				walkRefs(v.Field(i), path+"."+f.Name, fn)
			}
		}
	}
}
