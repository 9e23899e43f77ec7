// Package kube turns what the Kubernetes API says into a Snapshot: eligible nodes, and each
// configured service's ready endpoints grouped by node. It owns the client-go reflectors
// (EndpointSlices, Services, Nodes), waits for them to sync before publishing anything, coalesces
// changes, and keeps the last known endpoints when the API goes away (the safety valve).
//
// Snapshot and its types are purpose-built values; no client-go object leaves this package.
//
// Files, along the data path:
//   - watch.go: one reflector per watch (all Nodes; per referenced namespace its Services and
//     the EndpointSlices of the referenced services), their 30 s back-off cap and health;
//   - store.go, transform.go: the caches the reflectors write, keyed by name, stripped down;
//   - resolve.go: pure functions from API objects to Node and ServiceState;
//   - loop.go, debounce.go: the Run goroutine that turns cache changes into snapshots;
//   - valve.go: the safety valve and its exact rule;
//   - metrics.go: the ravel_kube_* metrics; rbac.yaml: the ClusterRole the Source needs.
//
// Goroutines: each reflector writes its store and reports through Source.mu; the Run goroutine
// alone resolves, applies the valve and publishes. Published snapshots are never modified.
package kube
