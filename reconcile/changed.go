package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/schema"
)

// DesiredReload computes the desired state of cfg from prev, the desired state of old that
// the last sync committed (kept current by every partial sync since), when the two configs
// differ only in some services: only those are computed again, the others are prev's. It
// returns the new state, the notes of the services computed again, the keys of those
// services under old and under cfg, and their labels. ok is false when anything else differs
// (the pool, defaults, the node, another number of services ...): then the caller computes
// the whole state (DesiredChecked) and compares (ChangedServices). prev is not modified.
func DesiredReload(old, cfg *config.Config, prev *State, snap *kube.Snapshot, node Node, h Health) (st *State, notes []Note, keys []netops.ServiceKey, labels map[string]bool, ok bool) {
	if old == nil || prev == nil || !schema.Directs(node.Role) || !config.SameButServices(old, cfg) {
		return nil, nil, nil, nil, false
	}
	st = &State{Services: maps.Clone(prev.Services), VIPs: map[netip.Addr]bool{}, Device: prev.Device,
		Sysctls: maps.Clone(prev.Sysctls), Stats: map[DestRef]netops.DestStats{}}
	labels = map[string]bool{}
	var in *inputs
	for i := range cfg.Services {
		was, now := &old.Services[i], &cfg.Services[i]
		if now.Equal(was) {
			continue
		}
		if in == nil { // the eligible nodes are found once, and only when needed
			in = &inputs{cfg: cfg, snap: snap, elig: eligibleNodes(cfg, snap, node), health: h}
		}
		for _, p := range was.Protocols {
			proto, _ := netops.ParseProto(p)
			k := netops.ServiceKey{VIP: was.VIP, Port: uint16(was.Port), Proto: proto}
			if vs, ok := st.Services[k]; ok {
				labels[vs.Name] = true
				delete(st.Services, k)
			}
			keys = append(keys, k)
		}
		vss, _ := in.service(now, &notes, nil)
		for _, vs := range vss {
			st.Services[vs.ServiceKey] = vs
			keys = append(keys, vs.ServiceKey)
			labels[vs.Name] = true
		}
	}
	// The VIPs as DesiredChecked binds them: every service's, and with a management port the
	// whole pool (which is the same as old's).
	for _, vs := range st.Services {
		st.VIPs[vs.VIP] = true
	}
	if cfg.Management.Port > 0 {
		for _, vip := range cfg.VIPPool {
			st.VIPs[vip] = true
		}
	}
	return st, notes, sortedUnique(keys), labels, true
}

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
