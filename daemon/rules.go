package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
	"github.com/ravel-lb/ravel/netops/nftables"
)

// localRules is where a role's local services go (rules.backend): iptables chains, one table
// per family, or ravel's nftables table. The zero value with ipt set is the iptables backend.
// With nft set, nftables serves and the iptables tables are only cleaned up. Owned by one
// role's goroutine.
type localRules struct {
	ipt iptables.Tables  // iptables' IPv4 chains; may be nil (iptables unavailable)
	t6  tables6          // ip6tables' chains (opened lazily)
	nft *nftables.Tables // ravel's nftables table; nil unless set
	// useNFT: nftables serves; else iptables does and nft, when set, is only cleaned up.
	useNFT bool
	// otherClean is set once ravel's rules of the backend not in use were removed;
	// otherErr is the last failure to remove them, logged when it changes.
	otherClean bool
	otherErr   string
	// removed is set once remove succeeded, until the next sync: an isolated director then
	// runs neither nft nor iptables-save on every cycle.
	removed bool
}

// directorInterfaces are the interfaces director-forwarded traffic arrives on: in-zone rules
// skip what comes in on them (see netops.LocalService.Zone).
func directorInterfaces(cfg *config.Config, fams ...family.Family) []string {
	out := []string{cfg.Node.Interface}
	for _, f := range fams {
		out = append(out, netops.TunnelDevice(f))
	}
	return out
}

func (lr *localRules) iptOptions(cfg *config.Config, f family.Family) chains.Options {
	return chains.Options{Chain: cfg.IPTables.Chain, Masquerade: cfg.IPTables.Masquerade, Family: f,
		DirectorInterfaces: directorInterfaces(cfg, f)}
}

// sync makes the rules serve local. full asks the nftables backend to check the kernel and
// rewrite its table (the resync timer); iptables reads the kernel on every apply anyway.
// It returns a log line per backend that changed something.
func (lr *localRules) sync(ctx context.Context, cfg *config.Config, local []netops.LocalService, full bool, log *slog.Logger, m *Metrics) error {
	start := time.Now()
	lr.removed = false
	var err error
	if lr.useNFT {
		err = lr.syncNFT(ctx, cfg, local, full, log, m)
		m.NFTDuration.Observe(time.Since(start).Seconds())
	} else {
		err = lr.syncIPT(ctx, cfg, local, log, m)
		m.IPTablesDuration.Observe(time.Since(start).Seconds())
	}
	if err == nil && !lr.otherClean {
		// Only after the backend in use serves: a switch never leaves a moment with neither.
		// A failure is logged and tried again at the next sync, but is not the sync's: the
		// backend in use serves, and the node's health view must say so (an error here would
		// make the director drain a node that forwards fine).
		if cerr := lr.cleanOther(ctx, cfg); cerr != nil {
			if cerr.Error() != lr.otherErr {
				lr.otherErr = cerr.Error()
				log.Warn("cannot remove ravel's rules from the backend not in use; retrying at every sync", "err", cerr)
			}
		} else {
			lr.otherClean, lr.otherErr = true, ""
			if other := lr.otherName(); other != "" {
				log.Info("ravel's rules of the backend not in use are gone (an earlier run's, if any)", "removed", other)
			}
		}
	}
	return err
}

func (lr *localRules) syncIPT(ctx context.Context, cfg *config.Config, local []netops.LocalService, log *slog.Logger, m *Metrics) error {
	if lr.ipt == nil {
		return nil
	}
	patch, err := lr.ipt.Apply(ctx, chains.Render(lr.iptOptions(cfg, family.IPv4), local))
	patch6, err6 := lr.t6.sync(ctx, cfg, lr.iptOptions(cfg, family.IPv6), local)
	for _, p := range []struct {
		patch chains.Patch
		what  string
	}{{patch, "iptables chains updated"}, {patch6, "ip6tables chains updated"}} {
		if !p.patch.Empty() {
			m.ChainWrites.Inc()
			log.Info(p.what, "chains", p.patch.Changed())
		}
	}
	if err = errors.Join(err, err6); err != nil {
		m.IPTablesErrors.Inc()
		return fmt.Errorf("iptables: %w", err)
	}
	return nil
}

func (lr *localRules) nftOptions(cfg *config.Config) nftables.Options {
	return nftables.Options{Masquerade: cfg.IPTables.Masquerade,
		DirectorInterfaces: directorInterfaces(cfg, family.IPv4, family.IPv6)}
}

func (lr *localRules) syncNFT(ctx context.Context, cfg *config.Config, local []netops.LocalService, full bool, log *slog.Logger, m *Metrics) error {
	var (
		c   nftables.Change
		err error
	)
	if full {
		var d nftables.Drift
		d, c, err = lr.nft.Resync(ctx, lr.nftOptions(cfg), local)
		if d.ReadErr != nil {
			log.Warn("cannot read ravel's nftables table back to check it; rewritten anyway", "table", lr.nft.Table(), "err", d.ReadErr)
		}
		if !d.Empty() {
			m.NFTDrift.Inc()
			log.Warn("nftables table differed from what ravel committed; rewritten", "table", lr.nft.Table(), "drift", d.String())
		}
	} else {
		c, err = lr.nft.Apply(ctx, lr.nftOptions(cfg), local)
	}
	if !c.Empty() {
		kind := "partial"
		if c.Full {
			kind = "full"
		}
		m.NFTTransactions.WithLabelValues(kind).Inc()
		if !full || err != nil {
			log.Info("nftables table updated", "table", lr.nft.Table(), "kind", kind, "chains", len(c.Chains), "elements", c.Elements, "ops", c.Ops)
		}
	}
	if err != nil {
		m.NFTErrors.Inc()
		return err
	}
	return nil
}

// otherName names what cleanOther removes, "" when there is nothing to look at.
func (lr *localRules) otherName() string {
	switch {
	case !lr.useNFT && lr.nft != nil:
		return "nftables table inet " + lr.nft.Table()
	case lr.useNFT && lr.ipt != nil:
		return "iptables chains"
	}
	return ""
}

// cleanOther removes ravel's rules from the backend not in use: its nftables table when
// iptables serves, its iptables chains (both families) when nftables does.
func (lr *localRules) cleanOther(ctx context.Context, cfg *config.Config) error {
	if !lr.useNFT {
		if lr.nft == nil {
			return nil
		}
		if err := lr.nft.Cleanup(ctx); err != nil {
			return fmt.Errorf("removing ravel's nftables table after a switch to iptables: %w", err)
		}
		return nil
	}
	var errs []error
	if lr.ipt != nil {
		errs = append(errs, lr.ipt.Cleanup(ctx))
	}
	errs = append(errs, lr.t6.cleanupAll(ctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing ravel's iptables chains after a switch to nftables: %w", err)
	}
	return nil
}

// cleanup removes every rule of the backend in use (stand-down, stop, isolated director).
func (lr *localRules) cleanup(ctx context.Context, cfg *config.Config) error {
	if lr.useNFT {
		return lr.nft.Cleanup(ctx)
	}
	var errs []error
	if lr.ipt != nil {
		if err := lr.ipt.Cleanup(ctx); err != nil {
			errs = append(errs, fmt.Errorf("iptables cleanup: %w", err))
		}
	}
	if err := lr.t6.cleanup(ctx, cfg); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// remove is cleanup for a director that is not colocated: whatever a colocated run left, in
// either backend (it may have run with the other rules.backend), without opening ip6tables
// for a pool without IPv6.
//
// It does the work once: a colocated run's rules are gone after it, and nothing of ravel's
// writes them again until the director syncs colocated (which clears removed). Before, an
// isolated director ran iptables-save, and with nftables an nft transaction, on every cycle.
func (lr *localRules) remove(ctx context.Context) error {
	if lr.removed {
		return nil
	}
	var errs []error
	if lr.nft != nil {
		errs = append(errs, lr.nft.Cleanup(ctx))
	}
	if lr.ipt != nil {
		errs = append(errs, lr.ipt.Cleanup(ctx))
	}
	err := errors.Join(append(errs, lr.t6.remove(ctx))...)
	lr.removed = err == nil
	return err
}

// set reports whether the role has any rules backend.
func (lr *localRules) set() bool { return lr.ipt != nil || lr.nft != nil }
