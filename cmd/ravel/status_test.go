package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/daemon"
)

// statusServer serves rep at /status and returns its host:port.
func statusServer(t *testing.T, rep daemon.Report) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(rep)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// runStatus runs `ravel status` with args and returns its exit code and stdout.
func runStatus(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs(append([]string{"status"}, args...))
	err := root.Execute()
	code := exitOK
	if ee, ok := err.(*exitError); ok {
		code = ee.code
	} else if err != nil {
		t.Fatalf("status: %v", err)
	}
	return code, out.String()
}

func TestStatusCommand(t *testing.T) {
	now := time.Now()
	good := daemon.Report{Version: "v1", Node: "d1", Role: "director", Ready: true,
		Config:     daemon.ConfigReport{Path: "/etc/ravel/ravel.yaml", Hash: strings.Repeat("ab", 32), LoadedAt: now},
		LastReload: &daemon.ReloadReport{Time: now, Trigger: "signal", Result: "ok"},
		LastSync:   &daemon.SyncReport{Time: now, Kind: "full", Result: "ok", Duration: "1ms", Plan: "1 update-destination"},
		Counts:     daemon.Counts{VirtualServices: 2, Destinations: 5, VIPs: 1}}
	code, out := runStatus(t, "--addr", statusServer(t, good))
	if code != exitOK {
		t.Errorf("exit %d for a ready daemon, want 0\n%s", code, out)
	}
	for _, want := range []string{"role director", "ready           yes", "sha256 abababababab", "OK by signal", "1 update-destination", "2 virtual services, 5 destinations"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	rs := good
	rs.Role, rs.Rules = "realserver", "nftables (table inet ravel)"
	if _, out = runStatus(t, "--addr", statusServer(t, rs)); !strings.Contains(out, "rules           nftables (table inet ravel)") {
		t.Errorf("status lacks the rules backend:\n%s", out)
	}

	sick := good
	sick.Unhealthy = []daemon.UnhealthyBackend{{Service: "web", Backend: "10.0.1.5:80", Reason: "status 503, want 200", Since: now.Add(-time.Minute)}}
	sick.HealthHold = []string{"api"}
	_, out = runStatus(t, "--addr", statusServer(t, sick))
	for _, want := range []string{"1 unhealthy, 1 services held", "api: every realserver fails", "web      10.0.1.5:80", "status 503, want 200"} {
		if !strings.Contains(out, want) {
			t.Errorf("unhealthy status lacks %q:\n%s", want, out)
		}
	}

	bad := good
	bad.LastReload = &daemon.ReloadReport{Time: now, Trigger: "file", Result: "invalid", Error: "1 error(s)",
		Findings: []config.Finding{{Severity: config.SeverityError, File: "/etc/ravel/ravel.yaml", Line: 9, Column: 44, Path: "services[0].backends[0].weight", Message: "must be a weight in 0..65535, not 70000"}}}
	code, out = runStatus(t, "--addr", statusServer(t, bad))
	if code != exitInvalid || !strings.Contains(out, "/etc/ravel/ravel.yaml:9:44: services[0].backends[0].weight") {
		t.Errorf("refused reload: exit %d, want 1, and the finding with its position:\n%s", code, out)
	}
	code, out = runStatus(t, "--addr", statusServer(t, bad), "--output", "json")
	var back daemon.Report
	if err := json.Unmarshal([]byte(out), &back); err != nil || back.LastReload.Findings[0].Line != 9 || code != exitInvalid {
		t.Errorf("--output json: exit %d, %v:\n%s", code, err, out)
	}

	notReady := good
	notReady.Ready, notReady.NotReady = false, "first sync not done yet"
	if code, out = runStatus(t, "--addr", statusServer(t, notReady)); code != exitInvalid || !strings.Contains(out, "NO: first sync not done yet") {
		t.Errorf("not ready: exit %d, want 1:\n%s", code, out)
	}

	// Nothing listening: exit 2.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if code, _ := runStatus(t, "--addr", addr); code != exitUsage {
		t.Errorf("unreachable daemon: exit %d, want 2", code)
	}

	// The address comes from --config's metrics.listen; a wildcard host is asked on loopback.
	_, port, _ := net.SplitHostPort(statusServer(t, good))
	cfg := t.TempDir() + "/ravel.yaml"
	if err := os.WriteFile(cfg, []byte(strings.Replace(directorYAML(44444, 1, 1, false), `"127.0.0.1:1"`, `":`+port+`"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runStatus(t, "--config", cfg); code != exitOK {
		t.Errorf("--config with metrics.listen :%s: exit %d\n%s", port, code, out)
	}
}
