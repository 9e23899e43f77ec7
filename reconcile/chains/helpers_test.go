package chains

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ravel-lb/ravel/netops"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/name.golden, or rewrites the file under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

type svcOpt func(*Service)

// makeService builds a Service on vip:port (e.g. "10.0.0.1:80") with probability 1.
func makeService(name, vipPort string, opts ...svcOpt) Service {
	ap := netip.MustParseAddrPort(vipPort)
	s := Service{Name: name, Key: netops.ServiceKey{VIP: ap.Addr(), Port: ap.Port(), Proto: netops.TCP}, Probability: 1}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func withUDP() svcOpt { return func(s *Service) { s.Key.Proto = netops.UDP } }

func withEndpoints(eps ...string) svcOpt {
	return func(s *Service) {
		for _, e := range eps {
			s.Endpoints = append(s.Endpoints, netip.MustParseAddrPort(e))
		}
	}
}

func withProbability(p float64) svcOpt { return func(s *Service) { s.Probability = p } }

var realserver = Options{Chain: "RAVEL"}
