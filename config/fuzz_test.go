package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse feeds the loader arbitrary bytes, seeded from every testdata and example file. The
// loader may refuse any input, but it must load it the same whether or not it cuts the
// services list into items, it must never panic or hang, every finding must have a
// position inside the file, and a config it accepts must load again, unchanged and without
// warnings, from its own effective form (what `ravel config print` writes).
//
//	go test ./config -run='^$' -fuzz=FuzzParse -fuzztime=3m
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../examples/*.yaml")
	for _, path := range append(seeds, examples...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(generateServices(3)) // the shape of BenchmarkParse10k's file
	for _, c := range chunkCases {
		f.Add([]byte(c.text))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Cut into service items (chunks.go) or not, the file loads the same.
		if d, _ := parseWays(t, "fuzz.yaml", data); d != "" {
			t.Fatalf("parsed in chunks it differs (-whole +chunks):\n%s", d)
		}
		c, err := Parse("fuzz.yaml", data)
		lines := len(lineStarts(data))
		if err != nil {
			var e *Errors
			if !errors.As(err, &e) {
				t.Fatalf("Parse returned %T, want *Errors", err)
			}
			if len(e.Errors) == 0 {
				t.Fatal("*Errors without errors")
			}
			for _, fd := range append(e.Errors, e.Warnings...) {
				checkFinding(t, fd, lines)
			}
			return
		}
		for _, fd := range c.Warnings {
			checkFinding(t, fd, lines)
		}
		out, err := yaml.Marshal(&c.ClusterConfig)
		if err != nil {
			t.Fatalf("marshal the effective config: %v", err)
		}
		again, err := Parse("effective.yaml", out)
		if err != nil {
			t.Fatalf("the effective config does not load:\n%s\n%v", out, err)
		}
		if len(again.Warnings) > 0 {
			t.Fatalf("the effective config has warnings:\n%s\n%v", out, again.Warnings)
		}
		out2, _ := yaml.Marshal(&again.ClusterConfig)
		if string(out) != string(out2) {
			t.Fatalf("the effective config changed when loaded again:\n%s\n---\n%s", out, out2)
		}
	})
}

func checkFinding(t *testing.T, f Finding, lines int) {
	t.Helper()
	if f.Line < 1 || f.Line > lines || f.Column < 1 || f.Message == "" || f.File != "fuzz.yaml" {
		t.Fatalf("finding out of the file (%d lines): %+v", lines, f)
	}
}
