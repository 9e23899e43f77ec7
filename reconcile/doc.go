// Package reconcile is ravel's pure core: from a loaded config, a cluster snapshot and this
// node's identity it computes the desired kernel state (Desired), compares it with the actual
// state (Diff) and produces an ordered, readable Plan; Apply executes a plan through the netops
// interfaces, collecting every error. Drains keeps which destinations are draining and since
// when, between one Diff and the next.
//
// Desired and Diff are pure functions of their arguments: no clock, no kernel, no globals
// (time is passed in). Keys are comparable netip-based structs from package netops.
package reconcile
