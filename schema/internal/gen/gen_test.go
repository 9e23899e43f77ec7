package main

import (
	"os"
	"testing"
)

// TestGeneratedFilesAreUpToDate fails when ravel.schema.json or the reference in
// docs/config.md differ from what the Go types say: run `go generate ./schema`.
func TestGeneratedFilesAreUpToDate(t *testing.T) {
	const schemaFile, docsFile = "../../ravel.schema.json", "../../../docs/config.md"
	js, docs, err := generate("../..", docsFile)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{schemaFile: string(js), docsFile: docs} {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s is out of date: run go generate ./schema", file)
		}
	}
}

func TestUserDoc(t *testing.T) {
	for _, tc := range []struct{ doc, goName, yamlName, want string }{
		{"VIPPool lists the addresses", "VIPPool", "vipPool", "vipPool lists the addresses"},
		{"Gateway, when set, is", "Gateway", "gateway", "gateway, when set, is"},
		{"Ports the director listens on", "Ports", "ports", "ports the director listens on"},
		{"IPVS overrides defaults.ipvs", "IPVSOptions", "ipvs", "IPVS overrides defaults.ipvs"},
	} {
		if got := userDoc(tc.doc, tc.goName, tc.yamlName); got != tc.want {
			t.Errorf("userDoc(%q) = %q, want %q", tc.doc, got, tc.want)
		}
	}
}
