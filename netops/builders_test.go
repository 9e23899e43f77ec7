package netops

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// Test object builders with functional options.

type svcOpt func(*Service)

// makeService builds a service from "tcp 10.0.0.1:80" with scheduler wrr and no flags.
func makeService(key string, opts ...svcOpt) Service {
	s := Service{ServiceKey: makeKey(key), Scheduler: "wrr"}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func withSched(name string) svcOpt  { return func(s *Service) { s.Scheduler = name } }
func withFlags(f SchedFlags) svcOpt { return func(s *Service) { s.Flags = f } }
func withRawProto(p Proto) svcOpt   { return func(s *Service) { s.Proto = p } }
func makeKey(key string) ServiceKey {
	proto, addr, ok := strings.Cut(key, " ")
	if !ok {
		panic("makeKey: want \"proto addr:port\", got " + key)
	}
	p, err := ParseProto(proto)
	if err != nil {
		panic(err)
	}
	ap := netip.MustParseAddrPort(addr)
	return ServiceKey{VIP: ap.Addr(), Port: ap.Port(), Proto: p}
}

type destOpt func(*Destination)

// makeDest builds a direct-routing destination of weight 1 from "10.0.1.5:80".
func makeDest(addr string, opts ...destOpt) Destination {
	ap := netip.MustParseAddrPort(addr)
	d := Destination{DestKey: DestKey{Addr: ap.Addr(), Port: ap.Port()}, Weight: 1, Forward: ForwardDR}
	for _, o := range opts {
		o(&d)
	}
	return d
}

func withWeight(w int) destOpt      { return func(d *Destination) { d.Weight = w } }
func withForward(f Forward) destOpt { return func(d *Destination) { d.Forward = f } }
func withThresholds(upper, lower uint32) destOpt {
	return func(d *Destination) { d.Upper, d.Lower = upper, lower }
}

func destKey(addr string) DestKey { return makeDest(addr).DestKey }

// errClass names the error class of err for comparisons: "ok", "exist", "notexist",
// "invalid", "notowned", or "other: <err>".
func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrExist):
		return "exist"
	case errors.Is(err, ErrNotExist):
		return "notexist"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrNotOwned):
		return "notowned"
	}
	return "other: " + err.Error()
}

// checkClass fails the test if err is not of the class want (see errClass).
func checkClass(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := errClass(err); got != want {
		t.Errorf("%s: got %s (%v), want %s", what, got, err, want)
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
