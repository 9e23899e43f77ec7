package chains

import (
	"slices"

	"github.com/ravel-lb/ravel/netops"
)

// The zone chains send in-zone clients (the node's own processes, its pods) of a service that
// has no ready endpoint on this node to the service's Zone targets: its ready endpoints on
// other nodes, or a static service's backends, spread by weight. Without them such a client
// would reach the node's own socket on the VIP (bound on every realserver) and be refused.
// The traffic the director forwards keeps today's behaviour (local endpoints or nothing): the
// zone chain returns at once for a packet that came in on a director interface.
//
//	RAVEL               ... service rules ..., then last: -j RAVEL-ZONE (only with a zone service)
//	RAVEL-ZONE          -i <director interface> -j RETURN, for each
//	                    per zone service: -d VIP/32 -p tcp --dport PORT -j RAVEL-ZSV-<hash>
//	RAVEL-ZSV-<hash>    -m addrtype --src-type LOCAL -j RAVEL-MASQ  (or -j RAVEL-MASQ: ZoneMasquerade)
//	                    then one DNAT per target, spread by weight
//
// The node's own connections are always masqueraded: their source is the VIP (the local route's
// source for a local destination), bound on every realserver, so the target's node would take
// the reply for itself. A pod's are not, unless ZoneMasquerade says the targets cannot route
// back to pod addresses: its own address is routable inside the cluster.

// zoneChain is the zone chain with its director interface rules, before any service.
func zoneChain(opts Options) Chain {
	c := Chain{Name: ZoneChain(opts.Chain)}
	for _, dev := range opts.DirectorInterfaces {
		if dev != "" && !slices.Contains(c.Rules, "-i "+dev+" -j RETURN") {
			c.Rules = append(c.Rules, "-i "+dev+" -j RETURN")
		}
	}
	return c
}

// zoneServiceChain masquerades what must be and DNATs to s's zone targets by weight.
func zoneServiceChain(opts Options, s netops.LocalService, name string) Chain {
	c := Chain{Name: name, Rules: make([]string, 0, len(s.Zone)+1)}
	masq := "-j " + MasqChain(opts.Chain)
	if s.ZoneMasquerade {
		c.Rules = append(c.Rules, masq)
	} else {
		c.Rules = append(c.Rules, "-m addrtype --src-type LOCAL "+masq)
	}
	c.Rules = append(c.Rules, dnatRules(s.Key.Proto, s.Zone)...)
	return c
}
