package netops

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// notOwnedKeys are refused before any file is touched.
var notOwnedKeys = []string{
	"",
	"/proc/sys/net/ipv4/ip_forward",
	"/net/ipv4/ip_forward",
	"net/ipv4/ip_forward/",
	"net//ipv4/ip_forward",
	"net/ipv4//ip_forward",
	"./net/ipv4/ip_forward",
	" net/ipv4/ip_forward",
	"net/ipv4/ip_forward ",
	"net/ipv4/ip_forward\n",
	"net.ipv4.ip_forward",
	"net/ipv4/../../kernel/modprobe",
	"net/ipv4/vs/../../../kernel/modprobe",
	"net/ipv4/vs/..",
	"net/ipv4/vs/",
	"net/ipv4/vs/a/b",
	"net/ipv4/vs/conn tab",
	"net/ipv4/vs/Conntrack",
	"net/ipv4/conf/../ip_forward",
	"net/ipv4/conf/./arp_ignore",
	"net/ipv4/conf/../arp_ignore",
	"net/ipv4/conf/eth0/forwarding",
	"net/ipv4/conf/eth0/arp_ignore/x",
	"net/ipv4/conf//arp_ignore",
	"net/ipv4/conf/eth 0/arp_ignore",
	"net/ipv4/conf/sixteen-chars-xx/arp_ignore",
	"net/ipv4/conf/all/../../../kernel/modprobe",
	"net/ipv6/conf/all/forwarding",
	"net/ipv4/tcp_syncookies",
	"kernel/modprobe",
}

// ownedKeys are allowed.
var ownedKeys = []string{
	"net/ipv4/ip_forward",
	"net/ipv4/vs/conntrack",
	"net/ipv4/vs/expire_nodest_conn",
	"net/ipv4/conf/all/arp_ignore",
	"net/ipv4/conf/default/arp_announce",
	"net/ipv4/conf/eth0.100/rp_filter",
	"net/ipv4/conf/fifteen-chars-x/accept_local",
}

func TestSysctlKeys(t *testing.T) {
	for _, k := range notOwnedKeys {
		checkClass(t, "checkSysctlKey("+k+")", checkSysctlKey(k), "notowned")
	}
	for _, k := range ownedKeys {
		checkClass(t, "checkSysctlKey("+k+")", checkSysctlKey(k), "ok")
	}
}

// TestSysctlRefusesBeforeTouchingFiles points KernelSysctl at a directory where every
// refused key would resolve to an existing file, and checks that none was read or written.
func TestSysctlRefusesBeforeTouchingFiles(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "proc", "sys")
	writeFile(t, filepath.Join(dir, "kernel", "modprobe"), "/sbin/modprobe\n")
	writeFile(t, filepath.Join(root, "kernel", "modprobe"), "/sbin/modprobe\n")
	writeFile(t, filepath.Join(root, "net", "ipv4", "ip_forward"), "0\n")
	writeFile(t, filepath.Join(root, "net", "ipv4", "conf", "eth0", "forwarding"), "0\n")
	writeFile(t, filepath.Join(root, "net", "ipv4", "tcp_syncookies"), "1\n")
	for _, s := range []Sysctl{NewSysctl(root), NewFakeSysctl()} {
		for _, k := range notOwnedKeys {
			_, err := s.Get(k)
			checkClass(t, "Get("+k+")", err, "notowned")
			checkClass(t, "Set("+k+")", s.Set(k, "7"), "notowned")
		}
	}
	for path, want := range map[string]string{
		filepath.Join(dir, "kernel", "modprobe"):                         "/sbin/modprobe\n",
		filepath.Join(root, "kernel", "modprobe"):                        "/sbin/modprobe\n",
		filepath.Join(root, "net", "ipv4", "ip_forward"):                 "0\n",
		filepath.Join(root, "net", "ipv4", "conf", "eth0", "forwarding"): "0\n",
		filepath.Join(root, "net", "ipv4", "tcp_syncookies"):             "1\n",
	} {
		if got := readFile(t, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}

func TestSysctlFiles(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "net", "ipv4", "vs", "conntrack"), "0\n")
	s := NewSysctl(root)
	must(t, s.Set("net/ipv4/vs/conntrack", "1"))
	if got := readFile(t, filepath.Join(root, "net", "ipv4", "vs", "conntrack")); got != "1\n" {
		t.Errorf("file holds %q after Set 1", got)
	}
	got, err := s.Get("net/ipv4/vs/conntrack")
	if err != nil || got != "1" {
		t.Errorf("Get = %q, %v; want 1", got, err)
	}
	_, err = s.Get("net/ipv4/vs/expire_nodest_conn")
	checkClass(t, "Get missing", err, "notexist")
	checkClass(t, "Set missing", s.Set("net/ipv4/vs/expire_nodest_conn", "1"), "notexist")
	if _, err := os.Stat(filepath.Join(root, "net", "ipv4", "vs", "expire_nodest_conn")); !os.IsNotExist(err) {
		t.Errorf("Set created a missing key: %v", err)
	}
	checkClass(t, "Set empty", s.Set("net/ipv4/vs/conntrack", " "), "invalid")
	checkClass(t, "Set two lines", s.Set("net/ipv4/vs/conntrack", "1\n0"), "invalid")
	if NewSysctl("").root != "/proc/sys" {
		t.Errorf("default root is %q", NewSysctl("").root)
	}
}

func TestFakeSysctl(t *testing.T) {
	f := NewFakeSysctl()
	must(t, f.Set("net/ipv4/vs/conntrack", "01"))
	must(t, f.Set("net/ipv4/vs/sync_threshold", "5"))
	checkClass(t, "Set abc", f.Set("net/ipv4/ip_forward", "abc"), "invalid")
	checkClass(t, "Set missing interface", f.Set("net/ipv4/conf/eth0/arp_ignore", "1"), "notexist")
	f.AddInterface("eth0")
	must(t, f.Set("net/ipv4/conf/eth0/arp_ignore", "1"))
	f.FailNext("Set", ErrInvalid)
	checkClass(t, "injected", f.Set("net/ipv4/ip_forward", "1"), "invalid")
	if diff := cmp.Diff([]string{
		"Set net/ipv4/vs/conntrack = 01",
		"Set net/ipv4/vs/sync_threshold = 5",
		"Set net/ipv4/ip_forward = abc",
		"Set net/ipv4/conf/eth0/arp_ignore = 1",
		"Set net/ipv4/conf/eth0/arp_ignore = 1",
		"Set net/ipv4/ip_forward = 1",
	}, f.Log()); diff != "" {
		t.Errorf("Log (-want +got):\n%s", diff)
	}
	want := `net/ipv4/conf/all/accept_local = 0
net/ipv4/conf/all/arp_announce = 0
net/ipv4/conf/all/arp_ignore = 0
net/ipv4/conf/all/rp_filter = 0
net/ipv4/conf/default/accept_local = 0
net/ipv4/conf/default/arp_announce = 0
net/ipv4/conf/default/arp_ignore = 0
net/ipv4/conf/default/rp_filter = 0
net/ipv4/conf/eth0/accept_local = 0
net/ipv4/conf/eth0/arp_announce = 0
net/ipv4/conf/eth0/arp_ignore = 1
net/ipv4/conf/eth0/rp_filter = 0
net/ipv4/conf/lo/accept_local = 0
net/ipv4/conf/lo/arp_announce = 0
net/ipv4/conf/lo/arp_ignore = 0
net/ipv4/conf/lo/rp_filter = 0
net/ipv4/ip_forward = 0
net/ipv4/vs/conn_reuse_mode = 1
net/ipv4/vs/conntrack = 1
net/ipv4/vs/expire_nodest_conn = 0
net/ipv4/vs/expire_quiescent_template = 0
net/ipv4/vs/ignore_tunneled = 0
net/ipv4/vs/schedule_icmp = 0
net/ipv4/vs/sloppy_tcp = 0
net/ipv4/vs/sync_threshold = 5	50
`
	if diff := cmp.Diff(want, f.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
	f.ResetCalls()
	if f.Calls("Set") != 0 {
		t.Errorf("ResetCalls kept counts")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(content), 0o644))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}
