// Package config loads a ClusterConfig file: it copies in the declared defaults, decodes the
// YAML strictly (unknown keys and wrong types are errors, with their line and column), validates
// it, and normalizes IPVS options the way the seed did (an unknown scheduler becomes wrr, an
// unknown forwarding method becomes dr, stray flags are dropped), reporting each normalization
// as a warning.
//
// Load is the one loader: the daemon and `ravel config validate` both call it. The Config it
// returns is read-only; a reload builds a new one.
package config
