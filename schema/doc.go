// Package schema holds ravel's ClusterConfig format: the Go types with the documentation of
// every key, the declared defaults, and the JSON Schema that editors use.
//
// The types here are plain data. Loading, strict decoding with positions, validation and
// normalization live in package config; nothing here reads files or talks to the kernel.
package schema
