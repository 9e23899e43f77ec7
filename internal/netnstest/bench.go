package netnstest

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ravel-lb/ravel/netops"
)

// BenchServices is the rules backends' benchmark set (bench/iptables.sh, bench/nftables.sh):
// services × endpoints local endpoints, VIPs from 198.19.0.0/16 on port 80, endpoints from
// 198.18.0.0/16 on 8080. With drop, the first service's first endpoint is left out: the
// one-endpoint change.
func BenchServices(services, endpoints int, drop bool) []netops.LocalService {
	svcs := make([]netops.LocalService, 0, services)
	for s := range services {
		svc := netops.LocalService{
			Name:        fmt.Sprintf("bench/svc-%d:http", s),
			Key:         netops.ServiceKey{VIP: netip.AddrFrom4([4]byte{198, 19, byte(s / 250), byte(s%250 + 1)}), Port: 80, Proto: netops.TCP},
			Probability: 1,
		}
		for e := range endpoints {
			if drop && s == 0 && e == 0 {
				continue
			}
			svc.Endpoints = append(svc.Endpoints, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(s / 20), byte(s%20*10 + e + 1)}), 8080))
		}
		svcs = append(svcs, svc)
	}
	return svcs
}

// Median is the median of samples (the upper one of an even count).
func Median(samples []time.Duration) time.Duration {
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[len(s)/2]
}

// Ms is d in milliseconds, for b.ReportMetric.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
