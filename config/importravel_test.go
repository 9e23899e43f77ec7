package config

import (
	"os"
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/internal/golden"
)

// TestImportRavel: a Ravel ClusterConfig written from the format's description (issue 16):
// the YAML out is golden, it loads with ravel's own loader (errors and warnings none), and
// every part that does not map is a finding naming its JSON path.
func TestImportRavel(t *testing.T) {
	data, err := os.ReadFile("testdata/ravel/full.json")
	if err != nil {
		t.Fatal(err)
	}
	out, fs, err := ImportRavel("full.json", data)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "ravel/full-import.yaml", string(out))
	cfg, err := Parse("imported.yaml", out)
	if err != nil {
		t.Fatalf("the imported config does not load:\n%s\n%v", out, err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("the imported config loads with warnings: %v", cfg.Warnings)
	}
	if got := len(cfg.Services); got != 4 {
		t.Errorf("%d services imported, want 4 (443 programs nothing in Ravel)", got)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.String())
	}
	golden.Check(t, "ravel/full-findings", strings.Join(got, "\n")+"\n")
}

func TestImportRavelRefusesOtherInput(t *testing.T) {
	// Positions: a syntax error and a wrong type, with the field.
	for in, want := range map[string]string{
		"{\n  \"vipPool\": [\"10.0.0.1\",]\n}": "x.json:2:26: not a Ravel ClusterConfig",
		"{\n  \"vipPool\": \"10.0.0.1\"\n}":    "x.json:2:24: vipPool: not a Ravel ClusterConfig: string where the format has []string",
	} {
		if _, _, err := ImportRavel("x.json", []byte(in)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ImportRavel(%q) error %v, want it to start %q", in, err, want)
		}
	}

	for _, in := range []string{"", "apiVersion: ravel/v1\n", `{"vipPool": "10.0.0.1"}`} {
		if _, _, err := ImportRavel("x.json", []byte(in)); err == nil || !strings.HasPrefix(err.Error(), "x.json") || !strings.Contains(err.Error(), "not a Ravel ClusterConfig") {
			t.Errorf("ImportRavel(%q) error %v, want it refused as not Ravel's format", in, err)
		}
	}
}
