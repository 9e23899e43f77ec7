package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/reconcile"
)

type (
	configT = config.Config
	nodeT   = reconcile.Node
)

func init() {
	// moby/ipvs logs through logrus when the IPVS family is missing; ravel reports the same
	// failure itself, in its own log, so logrus's copy is dropped.
	logrus.SetOutput(io.Discard)
}

// openTables opens ravel's chains of family fam (iptables or ip6tables) in the backend
// iptables.backend names (auto: the one kube-proxy's KUBE-SERVICES is in, see
// iptables.DetectMode; kube-proxy uses one backend for both families); a variable so that
// tests of the command run on fakes.
var openTables = func(chain, backend string, fam family.Family) (iptables.Tables, error) {
	if backend == "auto" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		backend = iptables.DetectMode(ctx, "")
	}
	if backend == "" {
		return iptables.New(chain, iptables.WithFamily(fam))
	}
	return iptables.New(chain, iptables.WithMode(backend), iptables.WithFamily(fam))
}

// openKernel opens the real netops implementations for this network namespace (a variable so
// that tests of the command run on fakes).
var openKernel = func() (reconcile.Kernel, func(), error) {
	ipvs, err := netops.NewIPVS()
	if err != nil {
		return reconcile.Kernel{}, nil, fmt.Errorf("opening IPVS: %w", err)
	}
	links, err := netops.NewLinks()
	if err != nil {
		ipvs.Close()
		return reconcile.Kernel{}, nil, fmt.Errorf("opening netlink: %w", err)
	}
	closeAll := func() {
		ipvs.Close()
		links.Close()
	}
	return reconcile.Kernel{IPVS: ipvs, Links: links, Sysctl: netops.NewSysctl("")}, closeAll, nil
}

// openLinks opens netlink for the realserver role (a variable for tests, as openKernel).
var openLinks = func() (netops.Links, func(), error) {
	l, err := netops.NewLinks()
	if err != nil {
		return nil, nil, err
	}
	return l, func() { l.Close() }, nil
}

// newSysctl returns the sysctl writer for /proc/sys (a variable for tests, as openKernel).
var newSysctl = func() netops.Sysctl { return netops.NewSysctl("") }
