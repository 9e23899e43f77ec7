// Package config loads a ClusterConfig file: it copies in the declared defaults, decodes the
// YAML strictly (unknown keys and wrong types are errors, with their line and column), validates
// it, and normalizes IPVS options the way the seed did (an unknown scheduler becomes wrr, an
// unknown forwarding method becomes dr, stray flags are dropped), reporting each normalization
// as a warning.
//
// Load is the one loader: the daemon and `ravel config validate` both call it. The Config it
// returns is read-only; a reload builds a new one. ravel run loads through a Cache, so that a
// reload of a long file decodes again only the services whose text changed.
//
// The files, in the order a file goes through them: load.go (Load, Parse, the YAML documents),
// chunks.go and cache.go (a long file's services list parsed an item at a time, and what a
// reload reuses), syntax.go (positions of YAML syntax errors), decode.go, merge.go, scalars.go and keys.go
// (strict decoding), validate.go (field rules), crossfield.go (rules that relate keys),
// normalize.go (defaults of services and normalization), positions.go and report.go (findings
// and where they are), parallel.go (long services lists decoded and checked on every CPU).
// docs/config.md lists every rule; testdata/ holds a file for each kind of mistake.
package config
