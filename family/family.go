// Package family is the address family that flows through ravel's data path: a VIP's family
// decides which EndpointSlices and node addresses feed its service (kube), which IPVS family
// its service and destinations have and how its address is bound (netops), and which table its
// local rules live in (iptables or ip6tables). Code asks a Family for what differs (its host
// prefix length, its name) instead of testing Is4 in each place.
//
// It imports nothing of ravel's, so every layer may use it.
package family

import (
	"fmt"
	"net/netip"
)

// Family is IPv4 or IPv6. The zero value is no family (an invalid address).
type Family uint8

// The families ravel serves.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// All lists the families in the order ravel handles them.
var All = []Family{IPv4, IPv6}

// Of returns the family of a. An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is IPv6: ravel's
// config refuses one where an address is written, and code that meets one from elsewhere
// (a socket's peer address) unmaps it first when it means IPv4.
func Of(a netip.Addr) Family {
	switch {
	case a.Is4():
		return IPv4
	case a.Is6():
		return IPv6
	}
	return 0
}

// Valid reports whether f is IPv4 or IPv6.
func (f Family) Valid() bool { return f == IPv4 || f == IPv6 }

// String is "IPv4" or "IPv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// Bits is the length of an address of f: 32 or 128 (0 for no family).
func (f Family) Bits() int {
	switch f {
	case IPv4:
		return 32
	case IPv6:
		return 128
	}
	return 0
}

// Host returns the prefix that holds a alone (a /32 or a /128), as a VIP is bound and matched.
// It is invalid when a is not of family f.
func (f Family) Host(a netip.Addr) netip.Prefix {
	if Of(a) != f {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(a, f.Bits())
}

// Has reports whether a is an address of f.
func (f Family) Has(a netip.Addr) bool { return f.Valid() && Of(a) == f }
