package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/deploynames"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/reconcile"
)

// TestDeployMetricsExist: every ravel_* metric that deploy/'s Grafana dashboard and alert
// rules name is in the /metrics of a running ravel (the bgp role, a director with checks, on
// the netops fakes), or, for a vector no event of this run set, among the metrics ravel
// registers. The ravel_kube_* names are kube's: TestDeployKubeMetricsExist checks them.
func TestDeployMetricsExist(t *testing.T) {
	names, err := deploynames.Referenced("../../deploy")
	if err != nil {
		t.Fatal(err)
	}
	oldKernel, oldTables, oldSettle := openKernel, openTables, coordinatorSettle
	t.Cleanup(func() { openKernel, openTables, coordinatorSettle = oldKernel, oldTables, oldSettle })
	openKernel = func() (reconcile.Kernel, func(), error) {
		return reconcile.Kernel{IPVS: netops.NewFakeIPVS(), Links: netops.NewFakeLinks(), Sysctl: netops.NewFakeSysctl()}, func() {}, nil
	}
	openTables = func(_, _ string, fam family.Family) (iptables.Tables, error) {
		return iptables.NewFakeFamily("RAVEL", fam), nil
	}
	coordinatorSettle = 0

	file := filepath.Join(t.TempDir(), "ravel.yaml")
	mport := freePort(t)
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: metrics-test, role: bgp, vipInterface: ravel0}
vipPool: [10.54.213.247]
defaults:
  healthCheck: {type: tcp, interval: 1s, timeout: 500ms, rise: 1, fall: 1}
services:
  - {name: web, vip: 10.54.213.247, port: 80, backends: [{address: 10.0.1.5}]}
coordinator: {ports: [%d]}
metrics: {listen: "127.0.0.1:%d"}
bgp: {asn: 65010, routerId: 10.0.0.1, peers: [{address: 127.0.0.2, asn: 65000, port: %d}]}
`, freePort(t), mport, freePort(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- run([]string{"run", "--config", file}) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", mport)
	series := regexp.MustCompile(`(?m)^(ravel_[a-z0-9_]+)`)
	seen := map[string]bool{}
	// Until the backend's check has reported, the peers were polled and the VIP handed to the
	// speaker, or 15 s.
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		code, body := getQuiet(base + "/metrics")
		if code != 200 {
			continue
		}
		for _, m := range series.FindAllStringSubmatch(body, -1) {
			seen[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_sum"), "_count")] = true
		}
		if seen["ravel_backend_up"] && seen["ravel_bgp_peer_up"] && seen["ravel_bgp_updates_sent_total"] {
			break
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ravel run did not return within 10s of SIGTERM")
	}
	if len(seen) == 0 {
		t.Fatal("no ravel_* series scraped")
	}

	rec := deploynames.NewRecorder()
	daemon.NewMetrics(rec)
	registered := rec.Names
	for _, n := range names {
		if strings.HasPrefix(n, "ravel_kube_") {
			continue
		}
		if !seen[n] && !registered[n] {
			t.Errorf("%s is named in deploy/ but neither scraped from a running ravel nor registered by it", n)
		} else if !seen[n] {
			t.Logf("%s: registered, not set in this run", n)
		}
	}
}

func getQuiet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
