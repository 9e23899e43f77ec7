package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ravel-lb/ravel/netops"
)

// ChangedServices returns, in key order, the services whose desired state differs between
// prev and next: added, removed, or with another scheduler, flags, label, hold or set of
// destinations. A reload that edits one weight changes one service.
func ChangedServices(prev, next *State) []netops.ServiceKey {
	var keys []netops.ServiceKey
	for k, n := range next.Services {
		if p, ok := prev.Services[k]; !ok || !sameService(p, n) {
			keys = append(keys, k)
		}
	}
	for k := range prev.Services {
		if _, ok := next.Services[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, netops.ServiceKey.Compare)
	return keys
}

func sameService(a, b *VirtualService) bool {
	return a.Service == b.Service && a.Name == b.Name && a.Keep == b.Keep && a.Held == b.Held &&
		maps.Equal(a.Dests, b.Dests)
}

// ReadServices reads the destinations of the services keys from the kernel, one request per
// service, into a state that holds only those; a service the kernel does not have is left
// out (a Diff adds it). A service's scheduler and flags are not read back (IPVS has no
// per-service get): they come from the first of records that has the service, so pass the
// state last committed first and the desired state last. A Diff then sees what ravel itself
// programmed, and the periodic full read repairs drift of those. Destination counters are not
// read: a drain then ends at its timeout or at the next full read.
func ReadServices(k Kernel, keys []netops.ServiceKey, device string, records ...*State) (*State, error) {
	st := NewState(device)
	var errs []error
	for _, key := range keys {
		dests, err := k.IPVS.Destinations(key)
		if err != nil {
			if !errors.Is(err, netops.ErrNotExist) {
				errs = append(errs, fmt.Errorf("list destinations of %s: %w", key, err))
			}
			continue
		}
		svc := netops.Service{ServiceKey: key}
		for _, r := range records {
			if r == nil {
				continue
			}
			if vs, ok := r.Services[key]; ok {
				svc = vs.Service
				break
			}
		}
		vs := &VirtualService{Service: svc, Dests: make(map[netops.DestKey]netops.Destination, len(dests))}
		for _, d := range dests {
			vs.Dests[d.DestKey] = d
		}
		st.Services[key] = vs
	}
	return st, errors.Join(errs...)
}
