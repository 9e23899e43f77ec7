package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ravel-lb/ravel/netops"
)

// readConcurrency is how many destination dumps a full read has in flight.
const readConcurrency = 4

// ReadActual reads what ravel owns from the kernel: IPVS services whose VIP is owned (with
// their destinations and connection counters), the owned addresses on device, and the current
// values of the sysctl keys ravel wants. Foreign services and addresses are not returned, so
// a Diff can never touch them.
func ReadActual(k Kernel, device string, owned map[netip.Addr]bool, sysctlKeys []string) (*State, error) {
	r := ReadIPVS(context.Background(), k.IPVS, func(s netops.Service) bool { return owned[s.VIP] })
	return ReadActualFrom(k, r, device, owned, sysctlKeys)
}

// IPVSRead is a read of the kernel's IPVS table: its services, each read with its
// destinations and the counters of those at weight 0. ReadActualFrom makes a State of it.
type IPVSRead struct {
	lists []listed
	err   error // listing the services failed, or the read was cancelled
}

type listed struct {
	vs   *VirtualService
	zero []DestRef // destinations at weight 0, whose counters Stats keeps
	conn []netops.DestStats
	err  error
}

// Err is why the read is incomplete (nil when every service was listed).
func (r *IPVSRead) Err() error { return r.err }

// Services is how many services the read holds.
func (r *IPVSRead) Services() int { return len(r.lists) }

// ReadIPVS lists the IPVS services and reads those keep accepts, destinations included. k
// nil (a realserver has no IPVS) reads nothing. Cancelling ctx stops it between services,
// with ctx's error as the read's.
func ReadIPVS(ctx context.Context, k netops.IPVS, keep func(netops.Service) bool) *IPVSRead {
	r := &IPVSRead{}
	if k == nil {
		return r
	}
	svcs, err := k.Services()
	if err != nil {
		r.err = fmt.Errorf("list IPVS services: %w", err)
	}
	var kept []netops.Service
	for _, s := range svcs {
		if keep(s) {
			kept = append(kept, s)
		}
	}
	// One dump per service, counters included: the services dump says it exists (no
	// GetService first), and a weight-0 destination's counters (Diff deletes a drained one
	// once it has no connections) come with it instead of a dump of the service each. The
	// dumps run readConcurrency at a time: the kernel's IPVS has one per socket and does each
	// in the reading thread (netops/ipvs_read.go).
	//
	// Each service's map is made as its dump arrives, so that the dumps' lists are garbage at
	// once rather than all held until the last one (200,000 destinations: 14 MB of a
	// restart's peak).
	r.lists = make([]listed, len(kept))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(readConcurrency, len(kept)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(kept) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				l, s := &r.lists[i], kept[i]
				dests, stats, err := k.ListedDestinations(s.ServiceKey)
				l.vs, l.err = &VirtualService{Service: s, Dests: make(map[netops.DestKey]netops.Destination, len(dests))}, err
				for j, d := range dests {
					l.vs.Dests[d.DestKey] = d
					if d.Weight == 0 {
						l.zero = append(l.zero, DestRef{s.ServiceKey, d.DestKey})
						l.conn = append(l.conn, stats[j])
					}
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		r.err, r.lists = err, nil
	}
	return r
}

// ReadActualFrom is ReadActual with the IPVS part read before, by ReadIPVS: the services of r
// whose VIP is owned, and the addresses and sysctls read now.
func ReadActualFrom(k Kernel, r *IPVSRead, device string, owned map[netip.Addr]bool, sysctlKeys []string) (*State, error) {
	st := NewState(device)
	errs := []error{r.err}
	for _, l := range r.lists {
		if !owned[l.vs.VIP] {
			continue
		}
		if l.err != nil {
			errs = append(errs, fmt.Errorf("list destinations of %s: %w", l.vs.ServiceKey, l.err))
		}
		for j, ref := range l.zero {
			st.Stats[ref] = l.conn[j]
		}
		st.Services[l.vs.ServiceKey] = l.vs
	}
	errs = append(errs, ReadVIPsAndSysctls(k, st, owned, sysctlKeys))
	return st, errors.Join(errs...)
}

// With is r with the services of keys taken from fresh, a later read of them (they changed
// while r was made); a key that fresh does not hold is left out (the service is gone).
func (r *IPVSRead) With(keys map[netops.ServiceKey]bool, fresh *IPVSRead) *IPVSRead {
	out := &IPVSRead{err: errors.Join(r.err, fresh.err)}
	for _, l := range r.lists {
		if !keys[l.vs.ServiceKey] {
			out.lists = append(out.lists, l)
		}
	}
	for _, l := range fresh.lists {
		if keys[l.vs.ServiceKey] {
			out.lists = append(out.lists, l)
		}
	}
	return out
}
