// Package health owns the network side of health checking: one probe (a TCP connect, an HTTP
// GET, or a GET of a realserver's node view), a Scheduler that runs many probes periodically
// with a bound on how many are in flight and jitter, and the HTTP handler a realserver serves
// its node view with.
//
// It decides nothing about weights: the rise/fall state machine and what a failure means for
// a service live in package reconcile, and the director (package daemon) joins the two. It
// imports nothing else from the project and logs nothing.
package health
