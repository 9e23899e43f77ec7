package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/netops/nftables"
	"github.com/ravel-lb/ravel/reconcile"
	"github.com/ravel-lb/ravel/schema"
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

// openNFT opens ravel's nftables table (a variable for tests, as openTables).
var openNFT = func(table string) (*nftables.Tables, error) { return nftables.New(table) }

// rulesBackends are the opened rules backends of a role: useNFT says nftables serves; the
// other one, when it could be opened, is only cleaned up once.
type rulesBackends struct {
	ipt    iptables.Tables
	nft    *nftables.Tables
	useNFT bool
}

// describe names the backend in use for ravel status.
func (rb rulesBackends) describe(cfg *configT) string {
	switch {
	case rb.useNFT:
		return "nftables (table inet " + rb.nft.Table() + ")"
	case rb.ipt != nil:
		return "iptables (chain " + cfg.IPTables.Chain + ")"
	}
	return ""
}

// openRules opens the backends rules.backend asks for. nftables serves with backend
// nftables, and with auto when nft works (1.0.1 or later, and the kernel takes a table):
// its chains come before kube-proxy's whether kube-proxy writes iptables or nftables;
// iptables serves otherwise. The backend not chosen is opened too, when it can be, so that
// ravel's rules of an earlier run there are removed: a switch leaves nothing behind.
// needRules says the caller cannot run without the backend that serves (a colocated
// director, a realserver); an isolated director only cleans up, and runs without it.
func openRules(cfg *configT, needRules bool, log *slog.Logger) (rulesBackends, error) {
	var rb rulesBackends
	nft, nftErr := openNFT(cfg.Rules.Table)
	switch cfg.Rules.Backend {
	case schema.RulesNFTables:
		switch {
		case nftErr == nil:
			rb.useNFT = true
		case needRules:
			return rb, fmt.Errorf("rules.backend nftables: %w", nftErr)
		default:
			log.Warn("nftables unavailable: a table of an earlier colocated run cannot be removed", "err", nftErr)
		}
	case schema.RulesAuto:
		rb.useNFT = nftErr == nil
		if nftErr != nil {
			log.Info("rules.backend auto: nftables unavailable, using iptables", "err", nftErr)
		}
	}
	if nftErr == nil {
		rb.nft = nft
	}
	ipt, iptErr := openTables(cfg.IPTables.Chain, cfg.IPTables.Backend, family.IPv4)
	switch {
	case iptErr == nil:
		rb.ipt = ipt
	case !rb.useNFT && needRules:
		return rb, iptErr
	case !rb.useNFT:
		log.Warn("iptables unavailable: chains of an earlier colocated run cannot be removed", "err", iptErr)
	}
	backend := schema.RulesIPTables
	if rb.useNFT {
		backend = schema.RulesNFTables
	}
	log.Info("rules backend", "configured", cfg.Rules.Backend, "using", backend)
	return rb, nil
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
