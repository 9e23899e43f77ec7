// Package systemd holds ravel's systemd unit; these tests check it with systemd-analyze, pin its
// safety-relevant lines, and run `make install` into a temporary DESTDIR.
package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// need returns the path of tool, skipping the test when it is missing, except under
// RAVEL_REQUIRE_KAPI (CI, where `make deps` installs it), where a missing tool is a failure.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("RAVEL_REQUIRE_KAPI") != "" {
			t.Fatalf("%s not found", tool)
		}
		t.Skipf("%s not installed (apt-get install %s)", tool, pkg)
	}
	return path
}

// buildRavel builds cmd/ravel into dir and returns the binary's path.
func buildRavel(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ravel")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ravel").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// verify writes text as ravel.service in a fresh directory and runs `systemd-analyze verify`
// on it. verify exits 0 on a bad value or an unknown key (it only logs "ravel.service:LINE:
// ..."), so any line naming the file counts as a failure too.
func verify(t *testing.T, sa, text string) (string, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ravel.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	return string(out), err == nil && !strings.Contains(string(out), "ravel.service:")
}

// TestUnitVerifies runs `systemd-analyze verify` on the unit, with its binary paths pointed at
// a real ravel binary (verify refuses an ExecStart that does not exist), and checks that verify
// does fail on broken copies, so that a pass means something.
func TestUnitVerifies(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	bin := buildRavel(t, t.TempDir())
	unit, err := os.ReadFile("ravel.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/ravel", bin)
	if text == string(unit) {
		t.Fatal("the unit does not run /usr/local/bin/ravel")
	}
	if out, ok := verify(t, sa, text); !ok {
		t.Fatalf("systemd-analyze verify:\n%s", out)
	}

	// Not in this list: a misspelled capability. systemd 252 drops an unknown capability name
	// without a word (verify passes), so TestUnitPinnedLines pins the capability lines exactly.
	for _, tc := range []struct{ name, old, new string }{
		{"bad value", "Type=notify\n", "Type=notifi\n"},
		{"unknown key", "Restart=on-failure\n", "Restartt=on-failure\n"},
		{"missing binary", "ExecStart=" + bin, "ExecStart=" + bin + "-missing"},
	} {
		t.Run("broken/"+tc.name, func(t *testing.T) {
			broken := strings.Replace(text, tc.old, tc.new, 1)
			if broken == text {
				t.Fatalf("the unit has no %q to break", tc.old)
			}
			if out, ok := verify(t, sa, broken); ok {
				t.Errorf("systemd-analyze verify accepted the unit with %q:\n%s", tc.new, out)
			}
		})
	}
}

// TestUnitPinnedLines pins the lines the daemon and the operator rely on: readiness and reload
// through sd_notify, the config validated before start, SIGTERM (which leaves a director's
// kernel state in place), restarts only on failure, and the privilege limits.
func TestUnitPinnedLines(t *testing.T) {
	unit, err := os.ReadFile("ravel.service")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(unit), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"Type=notify",
		"NotifyAccess=main",
		"ExecStartPre=/usr/local/bin/ravel config validate /etc/ravel/ravel.yaml",
		"ExecStartPre=-+/sbin/modprobe -a ip_vs",
		"ExecStart=/usr/local/bin/ravel run --config /etc/ravel/ravel.yaml --log-format json",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"KillSignal=SIGTERM",
		"TimeoutStopSec=30",
		"Restart=on-failure",
		"User=root",
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
		"AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ReadWritePaths=/run",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"WantedBy=multi-user.target",
	} {
		if !lines[want] {
			t.Errorf("unit lacks the line %q", want)
		}
	}
	for _, banned := range []string{
		"config.yaml",           // the config is /etc/ravel/ravel.yaml
		"ProtectKernelTunables", // would make /proc/sys read-only: ravel writes net sysctls
		"CAP_SYS_MODULE",        // ip_vs is loaded by the privileged ExecStartPre instead
		"CAP_DAC_OVERRIDE",      // not needed for /proc/sys/net (see the unit's comment)
		"Restart=always",
	} {
		for i, l := range strings.Split(string(unit), "\n") {
			if strings.Contains(l, banned) && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				t.Errorf("ravel.service:%d: %q: %s", i+1, banned, l)
			}
		}
	}
}
