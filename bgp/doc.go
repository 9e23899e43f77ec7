// Package bgp is the embedded BGP speaker of node.role bgp (GoBGP as a library, no external
// daemon): it keeps sessions with the configured peers and announces a set of VIPs as /32
// (IPv4) and /128 (IPv6) routes, each to the peers of its family. Callers hand it the whole set they want announced (Set), never events; the speaker
// works out what to announce and withdraw. Peers change by diff (SetPeers): a reload never
// resets a session it does not have to.
//
// The daemon's bgp role is not wired yet: node.role bgp is still refused by the config.
package bgp
