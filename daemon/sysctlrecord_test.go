package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRealserverSetsARPBack (issue 11, item 1): the realserver records the ARP values it
// overwrites before it writes them, and its clean-up sets them back, so a director on this
// node answers ARP for its VIPs again after a failback.
func TestRealserverSetsARPBack(t *testing.T) {
	f := newRealserverFakes(t, "eth0")
	must(t, f.sysctl.Set("net/ipv4/conf/all/arp_announce", "1")) // an operator's own value
	rec := SysctlRecord{Path: filepath.Join(t.TempDir(), "ravel", "sysctl-restore-1.json")}
	r := newTestRealserver(t, "realserver.yaml", f, realserverSnapshot())
	r.SetSysctlRecord(&rec)
	must(t, r.Sync(context.Background()))
	if v, _ := f.sysctl.Get("net/ipv4/conf/eth0/arp_ignore"); v != "1" {
		t.Fatalf("eth0 arp_ignore %q after the sync, want 1", v)
	}
	got, err := rec.Load()
	must(t, err)
	if got["net/ipv4/conf/eth0/arp_ignore"] != "0" || got["net/ipv4/conf/all/arp_announce"] != "1" {
		t.Errorf("record %v, want the values before the sync", got)
	}
	must(t, r.Sync(context.Background())) // nothing to change: the record keeps the originals
	must(t, r.Cleanup(context.Background()))
	for k, want := range map[string]string{"net/ipv4/conf/all/arp_ignore": "0", "net/ipv4/conf/eth0/arp_ignore": "0",
		"net/ipv4/conf/eth0/arp_announce": "0", "net/ipv4/conf/all/arp_announce": "1"} {
		if v, _ := f.sysctl.Get(k); v != want {
			t.Errorf("after clean-up %s = %s, want %s", k, v, want)
		}
	}
	if _, err := os.Stat(rec.Path); !os.IsNotExist(err) {
		t.Errorf("the record is still there after everything was set back: %v", err)
	}
}

// TestDirectorSetsBackWhatAKilledRealserverLeft: a realserver killed with -9 never stood
// down; the director's full sync sets back the ARP keys it recorded, and reports a value
// someone else set (once, in status and a metric) without touching it.
func TestDirectorSetsBackWhatAKilledRealserverLeft(t *testing.T) {
	f := newRealserverFakes(t, "eth0")
	rec := SysctlRecord{Path: filepath.Join(t.TempDir(), "sysctl-restore-1.json")}
	r := newTestRealserver(t, "realserver.yaml", f, realserverSnapshot())
	r.SetSysctlRecord(&rec)
	must(t, r.Sync(context.Background())) // ... and then kill -9: no Cleanup

	cfg := loadConfig(t, "director-static.yaml")
	cfg.Node.Interface = "eth0"
	m := NewMetrics(prometheus.NewRegistry())
	var logs syncBuffer
	d := NewDirector(cfg, nodeOf(cfg), f.kernel(), nil, slog.New(slog.NewTextHandler(&logs, nil)), m)
	d.SetSysctlRecord(&rec)
	st := NewStatus("test", cfg)
	d.SetStatus(st)
	d.FullSync()
	for _, k := range arpIgnoreKeys("eth0") {
		if v, _ := f.sysctl.Get(k); v != "0" {
			t.Errorf("%s = %s after the director's sync, want 0 (set back)", k, v)
		}
	}
	if value(t, m.ARPConflict) != 0 || st.Report().ARPProblem != "" {
		t.Errorf("a repaired value is reported as a conflict: %v %q", value(t, m.ARPConflict), st.Report().ARPProblem)
	}

	must(t, f.sysctl.Set("net/ipv4/conf/eth0/arp_ignore", "2")) // someone else's
	d.FullSync()
	d.FullSync()
	if v, _ := f.sysctl.Get("net/ipv4/conf/eth0/arp_ignore"); v != "2" {
		t.Errorf("a foreign arp_ignore was changed to %s", v)
	}
	if value(t, m.ARPConflict) != 1 || !strings.Contains(st.Report().ARPProblem, "net/ipv4/conf/eth0/arp_ignore=2") {
		t.Errorf("foreign arp_ignore: metric %v, status %q", value(t, m.ARPConflict), st.Report().ARPProblem)
	}
	if n := strings.Count(logs.String(), "does not answer ARP"); n != 1 {
		t.Errorf("the conflict was logged %d times over 2 syncs, want once", n)
	}
}

// TestBackendMismatchReported (issue 11, item 7): kube-proxy's chains in the other iptables
// backend only are reported once (log, status, metric) and cleared when that ends.
func TestBackendMismatchReported(t *testing.T) {
	f := newFakes() // an empty nat table: no KUBE-SERVICES in ravel's backend
	f.tables.SetOtherBackend(true)
	m := NewMetrics(prometheus.NewRegistry())
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	st := NewStatus("test", loadConfig(t, "realserver.yaml"))
	var c tablesBackendCheck
	c.run(context.Background(), f.tables, log, m, st)
	c.run(context.Background(), f.tables, log, m, st)
	if value(t, m.IPTablesBackendMismatch) != 1 || !strings.Contains(st.Report().IPTablesProblem, "the other backend only") {
		t.Errorf("mismatch: metric %v, status %q", value(t, m.IPTablesBackendMismatch), st.Report().IPTablesProblem)
	}
	if n := strings.Count(logs.String(), "other iptables backend"); n != 1 {
		t.Errorf("logged %d times over 2 checks, want once:\n%s", n, logs.String())
	}
	f.tables.SetOtherBackend(false)
	c.run(context.Background(), f.tables, log, m, st)
	if value(t, m.IPTablesBackendMismatch) != 0 || st.Report().IPTablesProblem != "" {
		t.Error("the mismatch is still reported after it ended")
	}
}
