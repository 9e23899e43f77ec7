package netops

import (
	"fmt"
	"maps"
	"slices"
	"sync"
)

var _ IPVS = (*FakeIPVS)(nil)

// KernelSchedulers are the IPVS schedulers the Debian 6.1 kernel ships as modules
// (net/netfilter/ipvs/ip_vs_<name>.ko), plus "none", which the kernel takes as "no
// scheduler". FakeIPVS accepts these; the kernel refuses any other name with ENOENT
// because request_module("ip_vs_<name>") finds nothing.
var KernelSchedulers = []string{"dh", "fo", "lblc", "lblcr", "lc", "mh", "nq", "none", "ovf", "rr", "sed", "sh", "wlc", "wrr"}

// FakeIPVS is a semantic fake of IPVS: it keeps services and destinations, refuses what the
// kernel refuses with the same error classes, counts calls per operation, fails on demand
// (FailNext) and dumps itself as text. It is safe for concurrent use.
type FakeIPVS struct {
	mu         sync.Mutex // guards everything below
	schedulers map[string]bool
	services   map[ServiceKey]*fakeService
	book       callBook
}

type fakeService struct {
	svc   Service
	dests map[DestKey]*fakeDest
}

type fakeDest struct {
	dest  Destination
	stats DestStats
}

// NewFakeIPVS returns an empty fake that knows KernelSchedulers.
func NewFakeIPVS() *FakeIPVS {
	f := &FakeIPVS{
		schedulers: map[string]bool{},
		services:   map[ServiceKey]*fakeService{},
		book: newCallBook(
			[]string{"Services", "Destinations", "DestStats", "ListedDestinations"},
			[]string{"AddService", "UpdateService", "DelService", "AddDestination", "UpdateDestination", "DelDestination"}),
	}
	for _, s := range KernelSchedulers {
		f.schedulers[s] = true
	}
	return f
}

// Services returns every service, sorted by key (the kernel returns them in hash order).
func (f *FakeIPVS) Services() ([]Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("Services", ""); err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(f.services))
	for _, s := range f.services {
		out = append(out, s.svc)
	}
	slices.SortFunc(out, func(a, b Service) int { return a.ServiceKey.Compare(b.ServiceKey) })
	return out, nil
}

// AddService adds s; ErrExist if its key is taken, ErrNotExist for an unknown scheduler.
func (f *FakeIPVS) AddService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("AddService", fmtService(s)); err != nil {
		return err
	}
	if err := checkService(s); err != nil {
		return err
	}
	// The kernel looks the service up before it looks for the scheduler.
	if f.services[s.ServiceKey] != nil {
		return refuse(ErrExist, "add service %s", s.ServiceKey)
	}
	if !f.schedulers[s.Scheduler] {
		return refuse(ErrNotExist, "add service %s: scheduler module ip_vs_%s", s.ServiceKey, s.Scheduler)
	}
	f.services[s.ServiceKey] = &fakeService{svc: s, dests: map[DestKey]*fakeDest{}}
	return nil
}

// UpdateService changes the scheduler and flags of an existing service, keeping its
// destinations.
func (f *FakeIPVS) UpdateService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("UpdateService", fmtService(s)); err != nil {
		return err
	}
	if err := checkService(s); err != nil {
		return err
	}
	fs := f.services[s.ServiceKey]
	if fs == nil {
		return refuse(ErrNotExist, "update service %s", s.ServiceKey)
	}
	if !f.schedulers[s.Scheduler] {
		return refuse(ErrNotExist, "update service %s: scheduler module ip_vs_%s", s.ServiceKey, s.Scheduler)
	}
	fs.svc = s
	return nil
}

// DelService deletes a service and its destinations.
func (f *FakeIPVS) DelService(k ServiceKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("DelService", k.String()); err != nil {
		return err
	}
	if err := checkServiceKey(k); err != nil {
		return err
	}
	if f.services[k] == nil {
		return refuse(ErrNotExist, "delete service %s", k)
	}
	delete(f.services, k)
	return nil
}

// Destinations returns the destinations of k sorted by key; ErrNotExist if k is missing.
func (f *FakeIPVS) Destinations(k ServiceKey) ([]Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("Destinations", k.String()); err != nil {
		return nil, err
	}
	fs, err := f.service(k, "list destinations of")
	if err != nil {
		return nil, err
	}
	out := make([]Destination, 0, len(fs.dests))
	for _, dk := range slices.SortedFunc(maps.Keys(fs.dests), DestKey.Compare) {
		out = append(out, fs.dests[dk].dest)
	}
	return out, nil
}

// ListedDestinations is Destinations with the counters, as one call; a missing service has
// none (the kernel's dump of a deleted service ends without an error).
func (f *FakeIPVS) ListedDestinations(k ServiceKey) ([]Destination, []DestStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("ListedDestinations", k.String()); err != nil {
		return nil, nil, err
	}
	fs := f.services[k]
	if fs == nil {
		return nil, nil, nil
	}
	var out []Destination
	var stats []DestStats
	for _, dk := range slices.SortedFunc(maps.Keys(fs.dests), DestKey.Compare) {
		out = append(out, fs.dests[dk].dest)
		stats = append(stats, fs.dests[dk].stats)
	}
	return out, stats, nil
}

// DestStats returns the counters set with SetStats (zero until then).
func (f *FakeIPVS) DestStats(k ServiceKey, d DestKey) (DestStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("DestStats", fmt.Sprintf("%s -> %s", k, d)); err != nil {
		return DestStats{}, err
	}
	fd, err := f.dest(k, d)
	if err != nil {
		return DestStats{}, err
	}
	return fd.stats, nil
}

// AddDestination adds d to service k.
func (f *FakeIPVS) AddDestination(k ServiceKey, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("AddDestination", fmtDest(k, d)); err != nil {
		return err
	}
	if err := checkDest(k, d); err != nil {
		return err
	}
	fs, err := f.service(k, "add destination "+d.DestKey.String()+" to")
	if err != nil {
		return err
	}
	if err := kernelRefusesDest(k, d, fs.dests[d.DestKey] == nil); err != nil {
		return err
	}
	if fs.dests[d.DestKey] != nil {
		return refuse(ErrExist, "add destination %s to %s", d.DestKey, k)
	}
	fs.dests[d.DestKey] = &fakeDest{dest: d}
	return nil
}

// UpdateDestination changes the weight, forwarding and thresholds of an existing destination.
func (f *FakeIPVS) UpdateDestination(k ServiceKey, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("UpdateDestination", fmtDest(k, d)); err != nil {
		return err
	}
	if err := checkDest(k, d); err != nil {
		return err
	}
	if _, err := f.service(k, "update destination "+d.DestKey.String()+" of"); err != nil {
		return err
	}
	if err := kernelRefusesDest(k, d, false); err != nil {
		return err
	}
	fd, err := f.dest(k, d.DestKey)
	if err != nil {
		return err
	}
	fd.dest = d
	return nil
}

// DelDestination removes destination d from service k.
func (f *FakeIPVS) DelDestination(k ServiceKey, d DestKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.book.call("DelDestination", fmt.Sprintf("%s -> %s", k, d)); err != nil {
		return err
	}
	if err := checkDestKey(k, d); err != nil {
		return err
	}
	fs, err := f.service(k, "delete destination "+d.String()+" of")
	if err != nil {
		return err
	}
	if fs.dests[d] == nil {
		return refuse(ErrNotExist, "delete destination %s of %s", d, k)
	}
	delete(fs.dests, d)
	return nil
}

func (f *FakeIPVS) service(k ServiceKey, what string) (*fakeService, error) {
	if err := checkServiceKey(k); err != nil {
		return nil, err
	}
	fs := f.services[k]
	if fs == nil {
		return nil, refuse(ErrNotExist, "%s service %s", what, k)
	}
	return fs, nil
}

func (f *FakeIPVS) dest(k ServiceKey, d DestKey) (*fakeDest, error) {
	fs, err := f.service(k, "destination "+d.String()+" of")
	if err != nil {
		return nil, err
	}
	fd := fs.dests[d]
	if fd == nil {
		return nil, refuse(ErrNotExist, "destination %s of %s", d, k)
	}
	return fd, nil
}

func fmtService(s Service) string {
	return fmt.Sprintf("%s %s flags=%#x", s.ServiceKey, s.Scheduler, uint32(s.Flags))
}

func fmtDest(k ServiceKey, d Destination) string {
	return fmt.Sprintf("%s -> %s %s w=%d x=%d y=%d", k, d.DestKey, d.Forward, d.Weight, d.Upper, d.Lower)
}
