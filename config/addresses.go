package config

import (
	"fmt"
	"net/netip"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/schema"
)

// Addresses that must never be bound, announced or forwarded to. The decoder already refuses
// unspecified, multicast and broadcast addresses everywhere; the rules here are for VIPs and
// backends only (a link-local node.gateway is common and fine).

// unsafeKind says why a cannot be a VIP or a backend, or "" when it can: a loopback address
// never leaves the host, and a link-local one (169.254.0.0/16, the cloud metadata service
// among them) is never routed.
func unsafeKind(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	}
	return ""
}

// checkVIP reports a VIP at path that must not be bound: an unsafe address, or the node's own
// gateway. It returns false when it reported one.
func (d *decoder) checkVIP(path string, a netip.Addr, node *schema.Node) bool {
	switch {
	case unsafeKind(a) != "":
		d.errAt(path, "%s is %s: it cannot be a VIP", a, unsafeKind(a))
	case node.Gateway != nil && *node.Gateway == a:
		d.errAt(path, "%s is node.gateway: it cannot be a VIP", a)
	default:
		return true
	}
	return false
}

// checkBackendAddr reports a backend address at path that traffic must not be sent to.
func (d *decoder) checkBackendAddr(path string, a netip.Addr) {
	if k := unsafeKind(a); k != "" {
		d.errAt(path, "%s is %s: it cannot be a backend", a, k)
	}
}

// checkBackendPorts reports the backends of services[i] on another port than the service's when
// forwarding (effective; own says the service sets it) is dr or tunnel: both deliver the packet
// unchanged, only nat rewrites the destination port. Backend ports are effective (0 resolved).
func (d *decoder) checkBackendPorts(s *schema.Service, i int, forwarding string, own bool) {
	if forwarding == schema.ForwardNAT {
		return
	}
	for j, b := range s.Backends {
		if b.Port != s.Port && b.Port > 0 && b.Port <= 65535 { // out of range: a field error
			d.errAt(index(index("services", i)+".backends", j)+".port", "port %d differs from the service port %d, and %s cannot rewrite ports (only nat can)",
				b.Port, s.Port, forwardingFrom(forwarding, own))
		}
	}
}

// forwardingFrom names a service's forwarding method for a finding, saying when it is inherited.
func forwardingFrom(forwarding string, own bool) string {
	if own {
		return "forwarding " + forwarding
	}
	return "forwarding " + forwarding + " (inherited from defaults.ipvs.forwarding)"
}

// otherFamily says that a, a destination of the service on vip, is of the other family: IPVS
// refuses an IPv4 destination on an IPv6 service and the other way round, and a realserver's
// rules live in one family's table.
func otherFamily(a, vip netip.Addr) string {
	return fmt.Sprintf("%s is %s, but the service's vip %s is %s: a service and its destinations share one address family",
		a, family.Of(a), vip, family.Of(vip))
}
