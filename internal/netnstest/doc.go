// Package netnstest builds throwaway network namespaces for host-kernel tests: named
// namespaces (`ip netns add ravel-t-<random>`, deleted when the test ends), veth pairs,
// addresses, routes and sysctls in them, commands run inside them, and real TCP through them: a
// server in one namespace that answers every connection with its name and the address it saw,
// and a client in another that counts the answers.
//
// Everything is done with ip(8) or with setns(2) on a locked OS thread (netops.InNetns): a
// socket stays in the namespace it was made in, so servers and clients are goroutines of the
// test, with no re-exec of the test binary. Tests that use it need root and ip(8): call Require
// first, which skips otherwise.
//
// It is imported by tests only (internal/layers checks that no package's own code does).
package netnstest
