package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/reconcile"
	"github.com/ravel-lb/ravel/reconcile/chains"
)

// Realserver is the realserver role: VIPs bound on node.vipInterface with ARP kept quiet,
// tunl0 for IPIP, and iptables chains that DNAT VIP traffic to this node's own ready pods.
type Realserver struct {
	cfg    *config.Config
	node   reconcile.Node
	links  netops.Links
	sysctl netops.Sysctl
	tables iptables.Tables
	snaps  *Latest // nil without Kubernetes
	log    *slog.Logger
	m      *Metrics
	owned  map[netip.Addr]bool
}

// NewRealserver returns the role; snaps may be nil (static config: VIPs and ARP only).
func NewRealserver(cfg *config.Config, node reconcile.Node, links netops.Links, sysctl netops.Sysctl, tables iptables.Tables, snaps *Latest, log *slog.Logger, m *Metrics) *Realserver {
	return &Realserver{cfg: cfg, node: node, links: links, sysctl: sysctl, tables: tables, snaps: snaps, log: log, m: m, owned: reconcile.OwnedVIPs(cfg)}
}

// Run syncs at once (after the first snapshot with Kubernetes), on every new snapshot and every
// resync period, until ctx ends.
func (r *Realserver) Run(ctx context.Context) error {
	var changed <-chan struct{}
	if r.snaps != nil {
		changed = r.snaps.Changed()
		for r.snaps.Get() == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			}
		}
	}
	t := time.NewTicker(max(r.cfg.Resync.D(), time.Second))
	defer t.Stop()
	for {
		if err := r.Sync(ctx); err != nil {
			r.log.Error("realserver sync failed; retrying at the next change or resync", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-t.C:
		}
	}
}

// Sync programs VIPs, sysctls, tunl0 and the chains, in one pass, collecting every error.
func (r *Realserver) Sync(ctx context.Context) error {
	desired, tunnel := reconcile.RealserverDesired(r.cfg)
	var errs []error
	if tunnel {
		if err := r.links.EnsureIPIP("tunl0"); err != nil {
			errs = append(errs, fmt.Errorf("tunl0: %w", err))
		}
	}
	errs = append(errs, r.converge(desired))
	var snap = r.snaps.getOrNil()
	rs := chains.Render(r.chainOptions(), reconcile.LocalServices(r.cfg, snap, r.node))
	patch, err := r.tables.Apply(ctx, rs)
	if err != nil {
		errs = append(errs, fmt.Errorf("iptables: %w", err))
	} else if !patch.Empty() {
		r.m.ChainWrites.Inc()
		r.log.Info("iptables chains updated", "chains", patch.Changed())
	}
	return errors.Join(errs...)
}

func (r *Realserver) chainOptions() chains.Options {
	return chains.Options{Chain: r.cfg.IPTables.Chain, Masquerade: r.cfg.IPTables.Masquerade}
}

// converge makes VIP bindings and sysctls equal to desired, through the same Diff and Apply the
// director uses (with no IPVS).
func (r *Realserver) converge(desired *reconcile.State) error {
	k := reconcile.Kernel{Links: r.links, Sysctl: r.sysctl}
	keys := make([]string, 0, len(desired.Sysctls))
	for key := range desired.Sysctls {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	// ReadActual always returns a state, with what it could not read left out: a VIP it could
	// not list looks unbound, so Cleanup would skip it and report success with the VIP still
	// bound. The read error is reported with the plan's, never dropped.
	actual, readErr := reconcile.ReadActual(k, r.cfg.Node.VIPInterface, r.owned, keys)
	plan := reconcile.Diff(desired, actual, reconcile.DiffOptions{Owned: r.owned})
	if plan.Empty() {
		return readErr
	}
	r.log.Info("applying realserver plan", "plan", plan.String())
	return errors.Join(readErr, reconcile.Apply(k, plan))
}

// Cleanup removes the chains and unbinds the VIPs. Sysctls are left as they are: they are
// harmless, and another program may rely on them. Every error is reported.
func (r *Realserver) Cleanup(ctx context.Context) error {
	var errs []error
	if err := r.tables.Cleanup(ctx); err != nil {
		errs = append(errs, fmt.Errorf("iptables cleanup: %w", err))
	}
	if err := r.converge(reconcile.NewState(r.cfg.Node.VIPInterface)); err != nil {
		errs = append(errs, fmt.Errorf("unbinding VIPs: %w", err))
	}
	r.log.Info("realserver role cleaned up", "errors", len(errs))
	return errors.Join(errs...)
}
