package netops

import "slices"

// Test controls of FakeIPVS: none of them counts as a call.

// SetSchedulers replaces the scheduler names the fake accepts (default KernelSchedulers).
func (f *FakeIPVS) SetSchedulers(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.schedulers)
	for _, n := range names {
		f.schedulers[n] = true
	}
}

// SetStats sets the counters DestStats reports for an existing destination.
func (f *FakeIPVS) SetStats(k ServiceKey, d DestKey, s DestStats) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd, err := f.dest(k, d)
	if err != nil {
		return err
	}
	fd.stats = s
	return nil
}

// FailNext makes the next call of op (a method name of IPVS, e.g. "AddDestination") return
// err without changing anything; several calls queue several failures. It panics on an
// unknown op, to catch typos.
func (f *FakeIPVS) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.book.failNext(op, err)
}

// Calls returns how many times op was called since creation or ResetCalls, failed calls
// included.
func (f *FakeIPVS) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.book.counts[op]
}

// CallCounts returns the number of calls of every operation called at least once.
func (f *FakeIPVS) CallCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.book.countsCopy()
}

// Log returns the mutating calls in order, failed ones included, each as the method name
// followed by its arguments in Dump's notation, e.g.
// "AddDestination tcp 10.0.0.1:80 -> 10.0.1.5:80 dr w=3 x=0 y=0".
func (f *FakeIPVS) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.book.log)
}

// ResetCalls forgets counts and the log (queued failures stay).
func (f *FakeIPVS) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.book.reset()
}

// Dump formats the state as FormatIPVS does.
func (f *FakeIPVS) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	svcs := make([]Service, 0, len(f.services))
	dests := make(map[ServiceKey][]Destination, len(f.services))
	for k, fs := range f.services {
		svcs = append(svcs, fs.svc)
		for _, fd := range fs.dests {
			dests[k] = append(dests[k], fd.dest)
		}
	}
	return FormatIPVS(svcs, dests)
}
