// Package chains renders the iptables nat chains ravel owns on a node, and diffs them.
//
// It is pure: no exec, no kernel. The input is what this node should do with VIP traffic
// (netops.LocalService: per VIP:port:protocol, the node's ready endpoints and the share of new
// connections to take, or, with none, the zone targets for clients inside the zone), which
// reconcile computes without knowing about chains; the output is
// a Ruleset, a sorted and deduplicated value whose String is an iptables-restore
// fragment. Parse reads the same value back from `iptables-save -t nat` output, looking only at
// chains of ravel's prefix and at jumps from built-in chains into them, and Diff turns
// (current, desired) into a Patch: one `iptables-restore --noflush` batch that rewrites only the
// chains whose rules changed, deletes stale ones and fixes the jumps, as one transaction.
//
// The chains, with the default prefix RAVEL:
//
//	PREROUTING, OUTPUT   -j RAVEL              (jumps, kept before kube-proxy's KUBE-SERVICES)
//	RAVEL                per service: -d VIP/32 -p tcp --dport PORT [-m statistic] -j RAVEL-SVC-<hash>
//	                     last, with a zone service: -j RAVEL-ZONE
//	RAVEL-SVC-<hash>     [-j RAVEL-MASQ], -s POD/32 -j RAVEL-MASQ per local endpoint (hairpin),
//	                     then one DNAT per local endpoint, spread evenly
//	RAVEL-ZONE           -i DEV -j RETURN per director interface, then per service without
//	                     local endpoints: -d VIP/32 -p tcp --dport PORT -j RAVEL-ZSV-<hash>
//	RAVEL-ZSV-<hash>     -m addrtype --src-type LOCAL -j RAVEL-MASQ (or -j RAVEL-MASQ), then one
//	                     DNAT per zone target, spread by weight
//	RAVEL-MASQ           marks the connection for masquerade (whenever a rule may jump to it)
//	RAVEL-POSTROUTING    masquerades marked packets (with RAVEL-MASQ)
//	POSTROUTING          -j RAVEL-POSTROUTING  (jump, with RAVEL-MASQ)
//
// Every rule is rendered exactly as iptables-save prints it back (the same match order, the
// probability rounded the way the kernel stores it, the comment quoted the way libxtables
// quotes it), so that comparing text is comparing rules and an unchanged chain is never
// rewritten. Both iptables backends (nf_tables and legacy, 1.8.x) print these rules alike.
package chains
