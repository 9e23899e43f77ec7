// Package kube turns what the Kubernetes API says into a Snapshot: eligible nodes, and each
// configured service's ready endpoints grouped by node. It owns the client-go informers
// (EndpointSlices, Services, Nodes), waits for them to sync before publishing anything, coalesces
// changes, and keeps the last known endpoints when the API goes away (the safety valve).
//
// Snapshot and its types are purpose-built values; no client-go object leaves this package.
package kube
