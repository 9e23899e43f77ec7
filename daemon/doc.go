// Package daemon runs ravel's loops: the director's reconcile loop (snapshot or timer → desired
// → diff → apply, with drains, periodic full resync and gratuitous ARP), and its metrics. It
// wires package reconcile to the kernel through the netops interfaces it is given, so tests can
// run it against the semantic fakes.
package daemon
