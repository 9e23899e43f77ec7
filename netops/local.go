package netops

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/ravel-lb/ravel/family"
)

// MergeLocal is what every rules backend renders from: svcs grouped by key and sorted by key.
// Services with the same key are merged: endpoints and zone targets united, sorted and
// deduplicated (a target listed twice keeps its largest weight), names joined with ",", the
// largest probability kept, ZoneMasquerade if any asks for it. IPv4-mapped addresses count as
// IPv4; endpoints and targets of another family than their VIP, and targets of weight 0, are
// dropped. With fam set, only services whose VIP is of fam are kept (iptables and ip6tables
// are separate tables); 0 keeps both families (nftables' inet table).
func MergeLocal(svcs []LocalService, fam family.Family) []LocalService {
	byKey := map[ServiceKey]*LocalService{}
	var keys []ServiceKey
	for _, s := range svcs {
		s.Key.VIP = s.Key.VIP.Unmap()
		f := family.Of(s.Key.VIP)
		if fam != 0 && f != fam {
			continue
		}
		m, ok := byKey[s.Key]
		if !ok {
			m = &LocalService{Key: s.Key}
			byKey[s.Key] = m
			keys = append(keys, s.Key)
		}
		if s.Name != "" && !slices.Contains(strings.Split(m.Name, ","), s.Name) {
			names := slices.DeleteFunc(append(strings.Split(m.Name, ","), s.Name), func(n string) bool { return n == "" })
			slices.Sort(names)
			m.Name = strings.Join(names, ",")
		}
		m.Probability = max(m.Probability, s.Probability)
		m.ZoneMasquerade = m.ZoneMasquerade || s.ZoneMasquerade
		for _, e := range s.Endpoints {
			if e = netip.AddrPortFrom(e.Addr().Unmap(), e.Port()); f.Has(e.Addr()) {
				m.Endpoints = append(m.Endpoints, e)
			}
		}
		for _, z := range s.Zone {
			if z.Addr = netip.AddrPortFrom(z.Addr.Addr().Unmap(), z.Addr.Port()); z.Weight > 0 && f.Has(z.Addr.Addr()) {
				m.Zone = append(m.Zone, z)
			}
		}
	}
	slices.SortFunc(keys, ServiceKey.Compare)
	out := make([]LocalService, 0, len(keys))
	for _, k := range keys {
		s := byKey[k]
		slices.SortFunc(s.Endpoints, netip.AddrPort.Compare)
		s.Endpoints = slices.Compact(s.Endpoints)
		slices.SortFunc(s.Zone, func(a, b Target) int {
			return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(b.Weight, a.Weight)) // largest first: Compact keeps it
		})
		s.Zone = slices.CompactFunc(s.Zone, func(a, b Target) bool { return a.Addr == b.Addr })
		out = append(out, *s)
	}
	return out
}
