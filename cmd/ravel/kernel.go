package main

import (
	"fmt"
	"io"

	"github.com/sirupsen/logrus"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/netops"
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

// openKernel opens the real netops implementations for this network namespace.
func openKernel() (reconcile.Kernel, func(), error) {
	ipvs, err := netops.NewIPVS()
	if err != nil {
		return reconcile.Kernel{}, nil, fmt.Errorf("opening IPVS (is the ip_vs module loaded, and are you root?): %w", err)
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
