package chains

import (
	"net/netip"

	"github.com/ravel-lb/ravel/netops"
)

type svcOpt func(*netops.LocalService)

// makeService builds a netops.LocalService on vip:port (e.g. "10.0.0.1:80") with probability 1.
func makeService(name, vipPort string, opts ...svcOpt) netops.LocalService {
	ap := netip.MustParseAddrPort(vipPort)
	s := netops.LocalService{Name: name, Key: netops.ServiceKey{VIP: ap.Addr(), Port: ap.Port(), Proto: netops.TCP}, Probability: 1}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func withUDP() svcOpt { return func(s *netops.LocalService) { s.Key.Proto = netops.UDP } }

func withEndpoints(eps ...string) svcOpt {
	return func(s *netops.LocalService) {
		for _, e := range eps {
			s.Endpoints = append(s.Endpoints, netip.MustParseAddrPort(e))
		}
	}
}

func withProbability(p float64) svcOpt { return func(s *netops.LocalService) { s.Probability = p } }

var realserver = Options{Chain: "RAVEL"}
