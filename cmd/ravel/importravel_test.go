package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/config"
)

// TestImportRavelCommand: the YAML on stdout loads, the findings go to stderr, and input that
// is not Ravel's JSON or would not load is refused with its exit code.
func TestImportRavelCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runTo([]string{"config", "import-ravel", "../../config/testdata/ravel/full.json"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	if _, err := config.Parse("out.yaml", out.Bytes()); err != nil {
		t.Errorf("stdout does not load: %v\n%s", err, out.String())
	}
	if !strings.Contains(errOut.String(), `warning: config6["2001:db8::1"]`) {
		t.Errorf("stderr lacks the IPv6 finding:\n%s", errOut.String())
	}

	dir := t.TempDir()
	loop := filepath.Join(dir, "loop.json")
	if err := os.WriteFile(loop, []byte(`{"vipPool": ["127.0.0.5"], "config": {"127.0.0.5": {"80": {"namespace": "a", "service": "b", "tcpEnabled": true}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		code int
	}{{"../../examples/static.yaml", exitUsage}, {filepath.Join(dir, "missing.json"), exitUsage}, {loop, exitInvalid}} {
		out.Reset()
		errOut.Reset()
		if code := runTo([]string{"config", "import-ravel", tc.file}, &out, &errOut); code != tc.code || out.Len() != 0 {
			t.Errorf("import-ravel %s: exit %d, %d bytes on stdout; want exit %d and nothing printed (stderr %s)", tc.file, code, out.Len(), tc.code, errOut.String())
		}
	}
}
