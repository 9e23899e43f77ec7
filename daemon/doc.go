// Package daemon runs ravel's loops: the director's reconcile loop (snapshot or timer → desired
// → diff → apply, with drains, periodic full resync and gratuitous ARP), its metrics, and the
// HTTP endpoints on metrics.listen (/metrics, /healthz, /readyz, /status). It wires package
// reconcile to the kernel through the netops interfaces it is given, so tests can run it
// against the semantic fakes.
package daemon
