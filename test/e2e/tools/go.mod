// Test tools for the e2e bed (test/e2e). A module of their own, stdlib only,
// so that building them never depends on the state of the main module's
// go.mod/go.sum nor needs the module proxy.
module github.com/ravel-lb/ravel/test/e2e/tools

go 1.26
