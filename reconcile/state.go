package reconcile

import (
	"net/netip"
	"slices"

	"github.com/ravel-lb/ravel/netops"
)

// VirtualService is one IPVS virtual service with its destinations.
type VirtualService struct {
	netops.Service
	// Name is the config service's label, for logs and plans.
	Name  string
	Dests map[netops.DestKey]netops.Destination
	// Keep says the endpoints of its Kubernetes target are not known yet (a reload pointed
	// it at a target whose watch has not synced): Diff leaves the destinations it has, so a
	// reload never empties a service, and Dests is empty.
	Keep bool
	// Held says every destination fails its health check and the hold keeps their weights
	// (see gateHealth): the service forwards, but it is not healthy to announce.
	Held bool
}

// State is a complete picture of what ravel owns in the kernel: as it should be (from Desired)
// or as it is (from ReadActual).
type State struct {
	Services map[netops.ServiceKey]*VirtualService
	// VIPs are the addresses bound on Device.
	VIPs   map[netip.Addr]bool
	Device string
	// Sysctls maps keys ("net/ipv4/vs/conntrack") to values.
	Sysctls map[string]string
	// Stats are live destination counters (actual state only), used to finish drains early.
	Stats map[DestRef]netops.DestStats
}

// DestRef names a destination of a service.
type DestRef struct {
	Service netops.ServiceKey
	Dest    netops.DestKey
}

// NewState returns an empty state.
func NewState(device string) *State {
	return &State{
		Services: map[netops.ServiceKey]*VirtualService{},
		VIPs:     map[netip.Addr]bool{},
		Device:   device,
		Sysctls:  map[string]string{},
		Stats:    map[DestRef]netops.DestStats{},
	}
}

// SortedServiceKeys returns the service keys in address, port, protocol order.
func (s *State) SortedServiceKeys() []netops.ServiceKey {
	keys := make([]netops.ServiceKey, 0, len(s.Services))
	for k := range s.Services {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, netops.ServiceKey.Compare)
	return keys
}

func sortedDestKeys(m map[netops.DestKey]netops.Destination) []netops.DestKey {
	keys := make([]netops.DestKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b netops.DestKey) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	return keys
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
