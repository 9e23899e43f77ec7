// Package nftables is the realserver's rules backend on nftables: it serves a node's local
// services (netops.LocalService) from one table of ravel's own, family inet, and touches
// nothing outside it: kube-proxy's tables, iptables-nft's tables and every other program's
// are left byte-identical.
//
// The table (Render):
//
//	table inet ravel {
//	  map services4 { type ipv4_addr . inet_proto . inet_service : verdict }  # and services6
//	  map zone4     { type ipv4_addr . inet_proto . inet_service : verdict }  # and zone6
//	  chain prerouting { type nat hook prerouting priority -110
//	    ip daddr . meta l4proto . th dport vmap @services4            # director and in-zone
//	    iifname { "eth0", "tunl0" } return                              # director traffic stops here
//	    ip daddr . meta l4proto . th dport vmap @zone4 }                # in-zone only
//	  chain output { ... the same lookups, for the node's own processes }
//	  chain svc-<hash>  { numgen random mod 3 vmap { 0 : goto ep-…, 1 : goto ep-…, 2 : goto ep-… } }
//	  chain ep-<hash>   { ip saddr 10.1.0.5 meta mark set meta mark | 0x2000  # hairpin
//	                      meta l4proto tcp dnat ip to 10.1.0.5:8080 }
//	  chain zone-<hash> { fib saddr type local jump mark-for-masquerade
//	                      numgen random mod 4 vmap { 0-2 : goto zep-…, 3 : goto zep-… } }
//	  chain zep-<hash>  { meta l4proto tcp dnat ip to 10.2.0.5:8080 }
//	  chain postrouting { type nat hook postrouting priority 90; masquerade marked }
//	}
//
// It drives the nft binary through sigs.k8s.io/knftables, kube-proxy's own library: each
// change is one nft transaction (all or nothing), carrying only what changed (see Tables).
package nftables
