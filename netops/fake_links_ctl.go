package netops

import (
	"net/netip"
	"slices"
)

// Test controls of FakeLinks: none of them counts as a call.

// AddDevice seeds a device ravel does not own (kind "veth", "bridge", "dummy", ...), down,
// with the given addresses of any prefix length. It replaces a device of the same name.
func (f *FakeLinks) AddDevice(name, kind string, up bool, addrs ...netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.newDevice(name, kind)
	d.up = up
	for _, p := range addrs {
		d.addrs[p] = true
	}
}

// IsUp reports whether dev exists and is up.
func (f *FakeLinks) IsUp(dev string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[dev]
	return d != nil && d.up
}

// Kind returns the kind of dev ("dummy", "ipip", "device" for lo, ...), "" if missing.
func (f *FakeLinks) Kind(dev string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d := f.devices[dev]; d != nil {
		return d.kind
	}
	return ""
}

// FailNext makes the next call of op (a method name, e.g. "AddAddr") return err without
// changing anything. It panics on an unknown op.
func (f *FakeLinks) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.book.failNext(op, err)
}

// Calls returns how many times op was called since creation or ResetCalls.
func (f *FakeLinks) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.book.counts[op]
}

// CallCounts returns the number of calls of every operation called at least once.
func (f *FakeLinks) CallCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.book.countsCopy()
}

// Log returns the mutating calls in order, e.g. "AddAddr ravel0 10.0.0.1/32".
func (f *FakeLinks) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.book.log)
}

// ResetCalls forgets counts and the log (queued failures stay).
func (f *FakeLinks) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.book.reset()
}
