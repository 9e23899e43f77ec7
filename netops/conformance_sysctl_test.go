package netops

import (
	"fmt"
	"testing"
)

// The Sysctl conformance table, run against FakeSysctl everywhere and against /proc/sys of
// a fresh network namespace in the QEMU guest (TestKernelSysctl). It has no subtests: in
// the kernel run, the test goroutine's thread is the one inside the namespace.

type sysctlStep struct {
	op, key, value string // op "get" or "set"; for get, value is the expected value
	want           string // error class
}

var sysctlSteps = []sysctlStep{
	{"set", "net/ipv4/vs/conntrack", "1", "ok"},
	{"get", "net/ipv4/vs/conntrack", "1", "ok"},
	{"set", "net/ipv4/vs/conntrack", " 0 ", "ok"},
	{"get", "net/ipv4/vs/conntrack", "0", "ok"},
	{"set", "net/ipv4/vs/expire_nodest_conn", "010", "ok"}, // proc_dointvec reads C literals: octal
	{"get", "net/ipv4/vs/expire_nodest_conn", "8", "ok"},
	{"set", "net/ipv4/vs/expire_nodest_conn", "0x10", "ok"},
	{"get", "net/ipv4/vs/expire_nodest_conn", "16", "ok"},
	{"set", "net/ipv4/vs/sync_threshold", "5", "ok"}, // the second value stays
	{"get", "net/ipv4/vs/sync_threshold", "5\t50", "ok"},
	{"set", "net/ipv4/vs/conntrack", "1 2", "ok"}, // extra values are ignored
	{"get", "net/ipv4/vs/conntrack", "1", "ok"},
	{"set", "net/ipv4/vs/conntrack", "0", "ok"},
	{"set", "net/ipv4/vs/conntrack", "abc", "invalid"},
	{"set", "net/ipv4/vs/conntrack", "", "invalid"},
	{"get", "net/ipv4/vs/conntrack", "0", "ok"},
	{"set", "net/ipv4/ip_forward", "1", "ok"},
	{"get", "net/ipv4/ip_forward", "1", "ok"},
	{"set", "net/ipv4/conf/lo/arp_ignore", "1", "ok"},
	{"get", "net/ipv4/conf/lo/arp_ignore", "1", "ok"},
	{"set", "net/ipv4/conf/all/arp_announce", "2", "ok"},
	{"get", "net/ipv4/conf/all/arp_announce", "2", "ok"},
	{"set", "net/ipv4/conf/default/rp_filter", "0", "ok"},
	{"set", "net/ipv4/conf/all/accept_local", "1", "ok"},
	{"get", "net/ipv4/conf/all/accept_local", "1", "ok"},
	{"get", "net/ipv4/vs/no_such_knob", "", "notexist"},
	{"set", "net/ipv4/vs/no_such_knob", "1", "notexist"},
	{"get", "net/ipv4/conf/nosuch0/arp_ignore", "", "notexist"},
	{"set", "net/ipv4/conf/nosuch0/arp_ignore", "1", "notexist"},
	{"set", "net/ipv4/conf/lo/forwarding", "1", "notowned"},
	{"get", "kernel/modprobe", "", "notowned"},
	{"set", "net/ipv4/vs/../../../kernel/modprobe", "/bin/true", "notowned"},
}

func conformanceSysctl(t *testing.T, s Sysctl) {
	t.Helper()
	for i, st := range sysctlSteps {
		what := fmt.Sprintf("step %d: %s %s %q", i, st.op, st.key, st.value)
		switch st.op {
		case "set":
			checkClass(t, what, s.Set(st.key, st.value), st.want)
		case "get":
			got, err := s.Get(st.key)
			checkClass(t, what, err, st.want)
			if err == nil && got != st.value {
				t.Errorf("%s: got %q", what, got)
			}
		}
	}
}

func TestConformanceSysctlFake(t *testing.T) {
	conformanceSysctl(t, NewFakeSysctl())
}
