package netops

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

var _ Sysctl = (*FakeSysctl)(nil)

// FakeSysctl is a semantic fake of Sysctl: a map of keys that exist, refusing keys ravel may
// not touch (ErrNotOwned), keys that do not exist (ErrNotExist) and values that are not
// integers (ErrInvalid: every key ravel may write is an integer vector, parsed by
// proc_dointvec as C literals). Values read back normalized as the kernel prints them
// ("010" → "8", several values separated by tabs). It counts calls, fails on demand and dumps itself.
type FakeSysctl struct {
	mu     sync.Mutex // guards everything below
	values map[string]string
	book   callBook
}

// fakeSysctlDefaults are the keys a new FakeSysctl holds besides the per-interface ones, with
// the values of a fresh network namespace of the Debian 6.1 kernel with ip_vs loaded
// (kernel_test.go checks them against the kernel).
var fakeSysctlDefaults = map[string]string{
	"net/ipv4/ip_forward":                   "0",
	"net/ipv4/vs/conntrack":                 "0",
	"net/ipv4/vs/expire_nodest_conn":        "0",
	"net/ipv4/vs/expire_quiescent_template": "0",
	"net/ipv4/vs/conn_reuse_mode":           "1",
	"net/ipv4/vs/sloppy_tcp":                "0",
	"net/ipv4/vs/schedule_icmp":             "0",
	"net/ipv4/vs/ignore_tunneled":           "0",
	"net/ipv4/vs/sync_threshold":            "3\t50",
}

// NewFakeSysctl returns a fake holding the keys of a fresh network namespace that ravel
// uses: net/ipv4/ip_forward, the common net/ipv4/vs keys, and the per-interface keys of
// "all", "default" and "lo", with the kernel's default values.
func NewFakeSysctl() *FakeSysctl {
	f := &FakeSysctl{
		values: maps.Clone(fakeSysctlDefaults),
		book:   newCallBook([]string{"Get"}, []string{"Set"}),
	}
	for _, dev := range []string{"all", "default", "lo"} {
		f.addInterface(dev)
	}
	return f
}

// AddInterface makes the per-interface keys of dev exist (with value 0), as the kernel does
// when a device appears.
func (f *FakeSysctl) AddInterface(dev string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addInterface(dev)
}

func (f *FakeSysctl) addInterface(dev string) {
	for _, k := range []string{"arp_ignore", "arp_announce", "rp_filter", "accept_local"} {
		f.values["net/ipv4/conf/"+dev+"/"+k] = "0"
	}
}

// Get returns the value of an existing key.
func (f *FakeSysctl) Get(key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("Get", key); err != nil {
		return "", err
	}
	if err := checkSysctlKey(key); err != nil {
		return "", err
	}
	v, ok := f.values[key]
	if !ok {
		return "", refuse(ErrNotExist, "read sysctl %s", key)
	}
	return v, nil
}

// Set writes an existing key.
func (f *FakeSysctl) Set(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("Set", key+" = "+value); err != nil {
		return err
	}
	if err := checkSysctlKey(key); err != nil {
		return err
	}
	if err := checkSysctlValue(key, value); err != nil {
		return err
	}
	old, ok := f.values[key]
	if !ok {
		return refuse(ErrNotExist, "write sysctl %s", key)
	}
	// proc_dointvec fills the vector from the front: fewer values keep the old tail, extra
	// values are ignored.
	vals := strings.Fields(old)
	for i, s := range strings.Fields(value) {
		// The kernel parses C literals (strtoul base 0): "010" is 8, "0x10" is 16.
		n, err := strconv.ParseInt(s, 0, 32)
		if err != nil || strings.ContainsAny(s, "_oObB") {
			return refuse(ErrInvalid, "write sysctl %s = %q", key, value)
		}
		if i < len(vals) {
			vals[i] = strconv.FormatInt(n, 10)
		}
	}
	f.values[key] = strings.Join(vals, "\t")
	return nil
}

// FailNext makes the next call of op ("Get" or "Set") return err without changing anything.
func (f *FakeSysctl) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.book.failNext(op, err)
}

// Calls returns how many times op was called since creation or ResetCalls.
func (f *FakeSysctl) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.book.counts[op]
}

// Log returns the Set calls in order, each as "Set key = value".
func (f *FakeSysctl) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.book.log)
}

// ResetCalls forgets counts and the log (queued failures stay).
func (f *FakeSysctl) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.book.reset()
}

// Dump formats every key as "key = value", sorted by key.
func (f *FakeSysctl) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(f.values)) {
		fmt.Fprintf(&b, "%s = %s\n", k, f.values[k])
	}
	return b.String()
}
