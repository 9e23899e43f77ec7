package chains

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

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

// withZone adds zone targets, each "addr:port/weight" (e.g. "10.244.2.5:8080/3").
func withZone(targets ...string) svcOpt {
	return func(s *netops.LocalService) {
		for _, t := range targets {
			addr, w, _ := strings.Cut(t, "/")
			weight, err := strconv.Atoi(w)
			if err != nil {
				panic(fmt.Sprintf("withZone(%q): %v", t, err))
			}
			s.Zone = append(s.Zone, netops.Target{Addr: netip.MustParseAddrPort(addr), Weight: weight})
		}
	}
}

func withZoneMasquerade() svcOpt { return func(s *netops.LocalService) { s.ZoneMasquerade = true } }
