// Package iptables is the only code of ravel that runs iptables: it programs the nat chains that
// its package chains renders from the local services to serve (netops.LocalService: the
// realserver's per-service DNAT chains, the colocated director's share, the masquerade chains)
// and nothing else.
//
// Tables is the interface; Real runs the iptables binaries, Fake keeps a nat table in memory and
// refuses what the kernel refuses. Both share one Apply algorithm:
//
//  1. read the nat table with `iptables-save -t nat` and parse only the chains of ravel's prefix
//     and the jumps into them (chains.Parse);
//  2. diff against the desired chains (chains.Diff);
//  3. run ONE `iptables-restore --noflush` batch, one transaction, that rewrites only the
//     changed chains, removes stale ones and adds, moves or deletes the jumps from PREROUTING,
//     OUTPUT and POSTROUTING (jumps inserted at position 1, in front of KUBE-SERVICES).
//
// ravel never restores a whole table and never flushes, deletes or rewrites a chain outside its
// prefix: kube-proxy's KUBE-* chains and every other program's rules are left byte-identical.
package iptables
