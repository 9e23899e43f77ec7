package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/daemon"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/reconcile"
)

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// directorYAML is a static director config; weight is backend 10.0.1.5's, extra adds a second
// VIP with its service when true.
func directorYAML(coordPort, metricsPort, weight int, extra bool) string {
	pool := "[10.54.213.247]"
	svc := ""
	if extra {
		pool = "[10.54.213.247, 10.54.213.248]"
		svc = `
  - name: api
    vip: 10.54.213.248
    port: 443
    backends: [{address: 10.0.1.7}]`
	}
	return fmt.Sprintf(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: run-test, role: director, vipInterface: ravel0}
vipPool: %s
defaults: {ipvs: {scheduler: wrr, forwarding: dr}}
services:
  - name: web
    vip: 10.54.213.247
    port: 80
    backends: [{address: 10.0.1.5, weight: %d}, {address: 10.0.1.6, weight: 1}]%s
coordinator: {ports: [%d]}
metrics: {listen: "127.0.0.1:%d"}
`, pool, weight, svc, coordPort, metricsPort)
}

// notifySocket listens where NOTIFY_SOCKET points (listenNotify) and collects the datagrams.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	conn := listenNotify(t)
	ch := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

// TestRunReloadLifecycle runs `ravel run` in this process on the netops fakes, under a fake
// systemd notify socket, and walks the operator lifecycle: READY=1 after the first sync; a file
// edit with an error is refused (kernel unchanged, metric 0, findings with positions in
// /status); a valid edit changes only the weight; SIGHUP reloads; a VIP dropped from the pool
// is unbound and its per-VIP series disappear; SIGTERM sends STOPPING=1 and leaves the kernel.
func TestRunReloadLifecycle(t *testing.T) {
	f := struct {
		ipvs    *netops.FakeIPVS
		links   *netops.FakeLinks
		tables  *iptables.Fake
		tables6 *iptables.Fake
	}{netops.NewFakeIPVS(), netops.NewFakeLinks(), iptables.NewFake("RAVEL"), iptables.NewFakeFamily("RAVEL", family.IPv6)}
	oldKernel, oldTables, oldSettle := openKernel, openTables, coordinatorSettle
	t.Cleanup(func() { openKernel, openTables, coordinatorSettle = oldKernel, oldTables, oldSettle })
	openKernel = func() (reconcile.Kernel, func(), error) {
		return reconcile.Kernel{IPVS: f.ipvs, Links: f.links, Sysctl: netops.NewFakeSysctl()}, func() {}, nil
	}
	openTables = func(_, _ string, fam family.Family) (iptables.Tables, error) {
		if fam == family.IPv6 {
			return f.tables6, nil
		}
		return f.tables, nil
	}
	coordinatorSettle = 0
	notes := notifySocket(t)

	dir := t.TempDir()
	file := filepath.Join(dir, "ravel.yaml")
	coord, mport := freePort(t), freePort(t)
	write := func(text string) {
		t.Helper()
		// As editors do: a new file renamed over the old one.
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(directorYAML(coord, mport, 3, true))

	done := make(chan int, 1)
	go func() { done <- run([]string{"run", "--config", file, "--log-level", "debug"}) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", mport)

	expectNote := func(want string) {
		t.Helper()
		select {
		case n := <-notes:
			if !strings.HasPrefix(n, want) {
				t.Fatalf("notify: got %q, want %q first", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("notify: no %q within 10s", want)
		}
	}
	expectNote("READY=1")
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz after READY=1: %d %s", code, body)
	}
	web := netops.ServiceKey{VIP: netip.MustParseAddr("10.54.213.247"), Port: 80, Proto: netops.TCP}
	weightOf := func(addr string) int {
		dests, err := f.ipvs.Destinations(web)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dests {
			if d.Addr.String() == addr {
				return d.Weight
			}
		}
		return -1
	}
	if w := weightOf("10.0.1.5"); w != 3 {
		t.Fatalf("weight of 10.0.1.5 = %d after start, want 3\n%s", w, f.ipvs.Dump())
	}
	metric := func(name string) float64 { return scrape(t, base, name) }
	if v := metric(`ravel_config_last_reload_successful`); v != 1 {
		t.Fatalf("ravel_config_last_reload_successful = %v at start, want 1", v)
	}
	if v := metric(`ravel_vip_virtual_services{vip="10.54.213.248"}`); v != 1 {
		t.Fatalf(`ravel_vip_virtual_services{vip="10.54.213.248"} = %v, want 1`, v)
	}
	kernelBefore := f.ipvs.Dump() + f.links.Dump()

	// An error on line 10 (weight out of range), written in place.
	bad := strings.Replace(directorYAML(coord, mport, 3, true), "weight: 3}", "weight: 70000}", 1)
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	expectNote("RELOADING=1\nMONOTONIC_USEC=")
	// systemctl status says why: the status line names the first finding with its position.
	expectNote("READY=1\nSTATUS=running the previous config; reload invalid: " + file + ":10:")
	waitMetric(t, base, `ravel_config_reloads_total{result="invalid",trigger="file"}`, 1)
	if v := metric(`ravel_config_last_reload_successful`); v != 0 {
		t.Errorf("ravel_config_last_reload_successful = %v after an invalid file, want 0", v)
	}
	if got := f.ipvs.Dump() + f.links.Dump(); got != kernelBefore {
		t.Errorf("an invalid file changed the kernel:\nbefore:\n%s\nafter:\n%s", kernelBefore, got)
	}
	var rep daemon.Report
	_, body := get(t, base+"/status")
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	if rep.LastReload == nil || rep.LastReload.Result != daemon.ReloadInvalid || len(rep.LastReload.Findings) == 0 {
		t.Fatalf("/status lastReload = %+v, want invalid with findings", rep.LastReload)
	}
	if fd := rep.LastReload.Findings[0]; fd.Line != 10 || fd.Column == 0 || fd.Path != "services[0].backends[0].weight" {
		t.Errorf("finding = %+v, want line 10, a column, path services[0].backends[0].weight", fd)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d after a refused reload; the last good config still runs, want 200", code)
	}

	// A valid edit: only the weight changes.
	write(directorYAML(coord, mport, 5, true))
	expectNote("RELOADING=1")
	expectNote("READY=1\nSTATUS=running")
	waitMetric(t, base, `ravel_config_reloads_total{result="ok",trigger="file"}`, 1)
	if w := weightOf("10.0.1.5"); w != 5 {
		t.Errorf("weight of 10.0.1.5 = %d after the reload, want 5\n%s", w, f.ipvs.Dump())
	}
	if v := metric(`ravel_config_last_reload_successful`); v != 1 {
		t.Errorf("ravel_config_last_reload_successful = %v after a good file, want 1", v)
	}

	// SIGHUP reloads the unchanged file.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expectNote("RELOADING=1")
	expectNote("READY=1")
	waitMetric(t, base, `ravel_config_reloads_total{result="ok",trigger="signal"}`, 1)

	// A change that needs a restart is refused.
	write(strings.Replace(directorYAML(coord, mport, 5, true), "vipInterface: ravel0", "vipInterface: ravel1", 1))
	expectNote("RELOADING=1")
	expectNote("READY=1\nSTATUS=running the previous config; reload restart-required: " + file + ": node")
	waitMetric(t, base, `ravel_config_reloads_total{result="restart-required",trigger="file"}`, 1)
	if v := metric(`ravel_config_last_reload_successful`); v != 0 {
		t.Errorf("ravel_config_last_reload_successful = %v after a restart-only change, want 0", v)
	}

	// The second VIP leaves the pool with its service: its binding, service and series go.
	write(directorYAML(coord, mport, 5, false))
	expectNote("RELOADING=1")
	expectNote("READY=1")
	waitMetric(t, base, `ravel_config_reloads_total{result="ok",trigger="file"}`, 2)
	if strings.Contains(f.ipvs.Dump(), "10.54.213.248") || strings.Contains(f.links.Dump(), "10.54.213.248") {
		t.Errorf("the retired VIP 10.54.213.248 is still in the kernel:\n%s\n%s", f.ipvs.Dump(), f.links.Dump())
	}
	if _, body := get(t, base+"/metrics"); strings.Contains(body, `vip="10.54.213.248"`) {
		t.Errorf("per-VIP series of the retired VIP remain:\n%s", grepLines(body, "10.54.213.248"))
	}
	kernelBefore = f.ipvs.Dump() + f.links.Dump()

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expectNote("STOPPING=1")
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("ravel run exited %d after SIGTERM, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ravel run did not return within 10s of SIGTERM")
	}
	if got := f.ipvs.Dump() + f.links.Dump(); got != kernelBefore || !strings.Contains(got, "10.54.213.247") {
		t.Errorf("SIGTERM changed the kernel (a director must leave it as it is):\n%s", got)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape returns the value of one series ("name{labels}" as exposed, labels sorted), or -1.
func scrape(t *testing.T, base, series string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func waitMetric(t *testing.T, base, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := scrape(t, base, series)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v within 10s", series, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
