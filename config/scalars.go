package config

import (
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decoding of the scalars that need more than a string: integers, addresses and durations.

func (d *decoder) integer(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, "must be an integer, not %s", describe(n))
		return
	}
	tag := n.ShortTag()
	// yaml/v3 tags an integer too large for 64 bits as a float.
	if tag == "!!float" && reDigits.MatchString(n.Value) {
		d.fail(n, "integer %s is out of range", n.Value)
		return
	}
	if tag != "!!int" {
		d.fail(n, "must be an integer, not %s", describe(n))
		return
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	// int keys take 32 bits (ports, weights, thresholds: a larger value is a typo); int64 keys
	// (4-byte ASNs, BGP attributes) take 64, and their validate rules bound them.
	if err != nil || v.Kind() != reflect.Int64 && (i > math.MaxInt32 || i < math.MinInt32) {
		d.fail(n, "integer %s is out of range", n.Value)
		return
	}
	v.SetInt(i)
}

// addrError is the reason netip gives, without its "ParseAddr(...): " prefix.
func addrError(err error) string {
	s := err.Error()
	if i := strings.Index(s, "): "); i >= 0 {
		s = s[i+3:]
	}
	return s
}

func (d *decoder) addr(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.fail(n, "must be an IP address, not %s", describe(n))
		return
	}
	a, err := netip.ParseAddr(n.Value)
	switch {
	case err != nil && strings.Contains(n.Value, "/"):
		d.fail(n, "%s is not an IP address: write the address alone, without a prefix length", quote(n.Value))
	case err != nil && reHostname.MatchString(n.Value):
		d.fail(n, "%s is not an IP address (host names are not resolved)", quote(n.Value))
	case err != nil:
		d.fail(n, "%s is not an IP address: %s", quote(n.Value), addrError(err))
	case a.Zone() != "":
		// A zone names an interface of one host: it is meaningless to a director, a
		// realserver and a client alike, and only link-local addresses take one.
		d.fail(n, "%s has a zone index (%%%s): write the address without it; ravel's addresses are routed, not link-local", quote(n.Value), a.Zone())
	case a.Is4In6():
		// ::ffff:10.0.0.1 is IPv4 spelled as IPv6: the kernel would take it for an IPv6
		// address and no IPv4 packet would ever match it.
		d.fail(n, "%s is an IPv4-mapped IPv6 address: write the IPv4 address %s", quote(n.Value), a.Unmap())
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		d.fail(n, "%s cannot be used here (unspecified, multicast or broadcast)", a)
	default:
		*v.Addr().Interface().(*netip.Addr) = a // no boxing of a in an interface
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, "must be a duration like 30s, not %s", describe(n))
		return
	}
	if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" {
		d.fail(n, "must be a duration with a unit, like %ss, not %s", n.Value, describe(n))
		return
	}
	t, err := parseDuration(n.Value)
	switch {
	case err != nil:
		d.fail(n, "%s is not a duration (write it like 500ms, 30s or 1m30s)", quote(n.Value))
	case t < 0:
		d.fail(n, "duration %s must not be negative", n.Value)
	default:
		v.SetInt(int64(t))
	}
}
