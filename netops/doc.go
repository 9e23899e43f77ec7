// Package netops is the only package of ravel that touches the kernel.
//
// It has one small interface per kernel part — IPVS (virtual services and destinations, over
// generic netlink through github.com/moby/ipvs), links and addresses (github.com/vishvananda/netlink),
// sysctls (files under /proc/sys, restricted to the trees ravel may write), and iptables chains —
// each with a real implementation and a semantic fake beside it. The fakes keep state, refuse
// what the kernel refuses with the same error classes (ErrExist, ErrNotExist, ErrInvalid), and
// Dump themselves as stable text for golden tests.
//
// netops knows nothing of configs or Kubernetes: callers (package reconcile) decide what to
// program and which objects ravel owns.
package netops
