package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeInDestdir runs `make -C .. target DESTDIR=dest PREFIX=/opt/ravel`, with the build's
// output in binDir rather than the clone's bin/ (another test or a run may be using it).
func makeInDestdir(t *testing.T, mk, target, dest, binDir string) string {
	t.Helper()
	cmd := exec.Command(mk, "-C", "..", target, "DESTDIR="+dest, "PREFIX=/opt/ravel",
		"RAVEL="+filepath.Join(binDir, "ravel"))
	// Under `make unit` the parent make's job-server flags would reach this make.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAKEFLAGS=") && !strings.HasPrefix(kv, "MFLAGS=") &&
			!strings.HasPrefix(kv, "MAKELEVEL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, out)
	}
	return string(out)
}

// TestMakeInstall installs into a temporary DESTDIR with PREFIX=/opt/ravel: the binary, the
// unit pointing at it, and a config that validates; a second install keeps the operator's
// edited config; uninstall removes the binary and the unit and keeps the config.
func TestMakeInstall(t *testing.T) {
	mk := need(t, "make", "make")
	dest, binDir := t.TempDir(), t.TempDir()

	out := makeInDestdir(t, mk, "install", dest, binDir)
	bin := filepath.Join(dest, "opt/ravel/bin/ravel")
	unitPath := filepath.Join(dest, "etc/systemd/system/ravel.service")
	conf := filepath.Join(dest, "etc/ravel/ravel.yaml")

	if fi, err := os.Stat(bin); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("binary: %v %v\n%s", fi, err, out)
	}
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(unit), "/usr/local/bin/ravel") {
		t.Errorf("the installed unit still runs /usr/local/bin/ravel")
	}
	for _, want := range []string{
		"ExecStartPre=/opt/ravel/bin/ravel config validate /etc/ravel/ravel.yaml\n",
		"ExecStart=/opt/ravel/bin/ravel run --config /etc/ravel/ravel.yaml --log-format json\n",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the installed unit lacks %q", want)
		}
	}
	shipped, err := os.ReadFile("ravel.service")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(string(shipped), "/usr/local/bin/ravel", "/opt/ravel/bin/ravel"); got != string(unit) {
		t.Errorf("the installed unit differs from ravel.service beyond the binary path")
	}

	config, err := os.ReadFile(conf)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, out)
	}
	if strings.Contains(string(config), "examples/") || strings.Contains(string(config), "$schema") {
		t.Errorf("the installed config still refers to the source tree:\n%s", config)
	}
	// The installed binary accepts the installed config (what ExecStartPre will run).
	if vout, err := exec.Command(bin, "config", "validate", conf).CombinedOutput(); err != nil {
		t.Errorf("ravel config validate %s: %v\n%s", conf, err, vout)
	}

	// An operator's edit survives a second install (an upgrade).
	edited := append(config, []byte("# edited by the operator\n")...)
	if err := os.WriteFile(conf, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	out = makeInDestdir(t, mk, "install", dest, binDir)
	if got, err := os.ReadFile(conf); err != nil || string(got) != string(edited) {
		t.Errorf("a second install changed the operator's config (%v):\n%s", err, got)
	}
	if !strings.Contains(out, "kept the existing") {
		t.Errorf("a second install does not say it kept the config:\n%s", out)
	}

	out = makeInDestdir(t, mk, "uninstall", dest, binDir)
	for _, gone := range []string{bin, unitPath} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("uninstall left %s (%v)", gone, err)
		}
	}
	if got, err := os.ReadFile(conf); err != nil || string(got) != string(edited) {
		t.Errorf("uninstall touched the config (%v)\n%s", err, out)
	}
}
