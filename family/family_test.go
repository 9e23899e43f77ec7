package family

import (
	"net/netip"
	"testing"
)

func TestOf(t *testing.T) {
	for s, want := range map[string]Family{
		"10.0.0.1":          IPv4,
		"0.0.0.0":           IPv4,
		"fd00::1":           IPv6,
		"::":                IPv6,
		"::ffff:10.0.0.1":   IPv6,
		"fe80::1%eth0":      IPv6,
		"2001:db8::a:b:c:d": IPv6,
	} {
		if got := Of(netip.MustParseAddr(s)); got != want {
			t.Errorf("Of(%s) = %v, want %v", s, got, want)
		}
	}
	if got := Of(netip.Addr{}); got.Valid() {
		t.Errorf("Of(zero Addr) = %v, want no family", got)
	}
}

func TestHost(t *testing.T) {
	for _, tt := range []struct {
		f    Family
		addr string
		want string
	}{
		{IPv4, "10.0.0.1", "10.0.0.1/32"},
		{IPv6, "fd00::1", "fd00::1/128"},
		{IPv4, "fd00::1", "invalid Prefix"},
		{IPv6, "10.0.0.1", "invalid Prefix"},
		{0, "10.0.0.1", "invalid Prefix"},
	} {
		if got := tt.f.Host(netip.MustParseAddr(tt.addr)).String(); got != tt.want {
			t.Errorf("%v.Host(%s) = %s, want %s", tt.f, tt.addr, got, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	if IPv4.String() != "IPv4" || IPv6.String() != "IPv6" || Family(5).String() != "family(5)" {
		t.Errorf("names: %v %v %v", IPv4, IPv6, Family(5))
	}
	if IPv4.Bits() != 32 || IPv6.Bits() != 128 || Family(0).Bits() != 0 {
		t.Errorf("bits: %d %d %d", IPv4.Bits(), IPv6.Bits(), Family(0).Bits())
	}
	if !IPv6.Has(netip.MustParseAddr("fd00::1")) || IPv4.Has(netip.MustParseAddr("fd00::1")) || Family(0).Has(netip.Addr{}) {
		t.Error("Has")
	}
}
