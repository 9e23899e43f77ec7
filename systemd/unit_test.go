// Package systemd holds ravel's systemd unit; this test checks it with systemd-analyze.
package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnitVerifies runs `systemd-analyze verify` on the unit, with its binary paths pointed at
// a real ravel binary (verify refuses an ExecStart that does not exist).
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("RAVEL_REQUIRE_KAPI") != "" { // CI: make deps installs systemd
			t.Fatal("systemd-analyze not found")
		}
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ravel")
	build := exec.Command("go", "build", "-o", bin, "../cmd/ravel")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	unit, err := os.ReadFile("ravel.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/ravel", bin)
	if text == string(unit) {
		t.Fatal("the unit does not run /usr/local/bin/ravel")
	}
	path := filepath.Join(dir, "ravel.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "ravel.service:") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitValidatesBeforeStart pins the safety net: the unit validates the config before the
// daemon starts and stops with SIGTERM (which leaves the kernel state in place).
func TestUnitValidatesBeforeStart(t *testing.T) {
	unit, err := os.ReadFile("ravel.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStartPre=/usr/local/bin/ravel config validate /etc/ravel/config.yaml",
		"ExecStart=/usr/local/bin/ravel run --config /etc/ravel/config.yaml",
		"KillSignal=SIGTERM",
		"Restart=always",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}
