package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/netops/nftables"
	"github.com/ravel-lb/ravel/reconcile"
)

// Realserver is the realserver role: VIPs bound on node.vipInterface with ARP kept quiet,
// tunl0 for IPIP, and iptables chains that DNAT VIP traffic to this node's own ready pods.
type Realserver struct {
	node   reconcile.Node
	links  netops.Links
	sysctl netops.Sysctl
	rules  localRules // iptables chains (both families) or ravel's nftables table
	snaps  *Latest    // nil without Kubernetes
	log    *slog.Logger
	m      *Metrics
	status *Status       // may be nil
	poke   chan struct{} // a reload wakes Run

	mu    sync.Mutex // guards cfg and owned: Reload writes them while the role runs
	cfg   *config.Config
	owned map[netip.Addr]bool
	// retired are VIPs a reload removed from vipPool, owned until a sync unbound them (as
	// in Director).
	retired map[netip.Addr]bool

	// nodeMissing is whether the last snapshot lacked this node (owned by Sync's caller, Run).
	nodeMissing bool
	health      *NodeHealth // may be nil
	// lastLocal are the local services of the last successful apply (owned by Sync's
	// caller): kept for a target a reload switched to until its watch has synced.
	lastLocal map[netops.ServiceKey]netops.LocalService
	backends  tablesBackendCheck // owned by Run
	// resyncDue asks the next Sync to check the rules against the kernel (owned by Run).
	resyncDue bool
	record    *SysctlRecord // the sysctls this role overwrote, to set back; may be nil
}

// SetSysctlRecord makes the role remember the sysctl values it overwrites (before it does) and
// set them back when it stands down or stops. Call before Run.
func (r *Realserver) SetSysctlRecord(rec *SysctlRecord) { r.record = rec }

// SetNodeHealth gives the role the view it reports its rules to. Call before Run.
func (r *Realserver) SetNodeHealth(h *NodeHealth) { r.health = h }

// NewRealserver returns the role; snaps may be nil (static config: VIPs and ARP only).
func NewRealserver(cfg *config.Config, node reconcile.Node, links netops.Links, sysctl netops.Sysctl, tables iptables.Tables, snaps *Latest, log *slog.Logger, m *Metrics) *Realserver {
	return &Realserver{cfg: cfg, node: node, links: links, sysctl: sysctl, rules: localRules{ipt: tables}, snaps: snaps, log: log, m: m,
		owned: reconcile.OwnedVIPs(cfg), retired: map[netip.Addr]bool{}, poke: make(chan struct{}, 1)}
}

// SetTables6 gives the role the way to open ip6tables' chains, for the IPv6 VIPs. They are
// opened only once the pool has an IPv6 VIP: a node that serves IPv4 only never runs
// ip6tables (which may load modules or not exist). Call before Run.
func (r *Realserver) SetTables6(open func() (iptables.Tables, error)) { r.rules.t6.open = open }

// SetNFTables gives the role ravel's nftables table: with use it serves the local services
// there and removes ravel's iptables chains (of an earlier run with rules.backend iptables)
// once it does; without, iptables serves and the table is removed once. Call before Run.
func (r *Realserver) SetNFTables(t *nftables.Tables, use bool) {
	r.rules.nft, r.rules.useNFT = t, use && t != nil
}

// SetStatus gives the role the shared status it reports its syncs to. Call before Run.
func (r *Realserver) SetStatus(s *Status) { r.status = s }

// Reload switches the role to cfg; a running role syncs at once. cfg must not change what
// RestartRequired refuses.
func (r *Realserver) Reload(cfg *config.Config) {
	r.mu.Lock()
	r.cfg, r.owned = cfg, ownedAfterReload(r.owned, r.retired, cfg)
	r.mu.Unlock()
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// current returns the config and owned VIPs to sync with.
func (r *Realserver) current() (*config.Config, map[netip.Addr]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg, r.owned
}

// synced forgets retired VIPs once a sync with cfg succeeded (they are unbound now).
func (r *Realserver) synced(cfg *config.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg == cfg && len(r.retired) > 0 {
		clear(r.retired)
		r.owned = reconcile.OwnedVIPs(cfg)
	}
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
	cfg, _ := r.current()
	period := max(cfg.Resync.D(), time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	r.checkBackends(ctx)
	for {
		if err := r.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				// Stopping: the sync's commands were cancelled; Cleanup follows.
				r.log.Info("realserver sync interrupted by the stop", "err", err)
				return nil
			}
			r.log.Error("realserver sync failed; retrying at the next change or resync", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-t.C:
			r.checkBackends(ctx)
			r.resyncDue = true
		case <-r.poke:
			if cfg, _ := r.current(); max(cfg.Resync.D(), time.Second) != period {
				period = max(cfg.Resync.D(), time.Second)
				t.Reset(period)
			}
		}
	}
}

// checkBackends reports kube-proxy's chains in the other iptables backend, when iptables serves.
func (r *Realserver) checkBackends(ctx context.Context) {
	if !r.rules.useNFT && r.rules.ipt != nil {
		r.backends.run(ctx, r.rules.ipt, r.log, r.m, r.status)
	}
}

// Sync programs VIPs, sysctls, tunl0 and the rules, in one pass, collecting every error.
func (r *Realserver) Sync(ctx context.Context) (err error) {
	cfg, owned := r.current()
	start := time.Now()
	var summary string
	defer func() {
		if err == nil {
			r.synced(cfg)
		}
		if r.status != nil {
			rep := SyncReport{Time: time.Now(), Kind: "realserver", Result: "ok", Duration: time.Since(start).Round(10 * time.Microsecond).String(), Plan: summary}
			if err != nil {
				rep.Result, rep.Error = "error", err.Error()
			}
			r.status.RecordSync(rep)
		}
	}()
	desired, tunnels := reconcile.RealserverDesired(cfg)
	var errs []error
	for _, f := range tunnels {
		if err := netops.EnsureTunnel(r.links, f); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", netops.TunnelDevice(f), err))
		}
	}
	summary, err = r.converge(cfg, owned, desired)
	errs = append(errs, err)
	var snap = r.snaps.getOrNil()
	r.checkNode(snap)
	local := reconcile.LocalServices(cfg, snap, r.node)
	for key := range reconcile.UnknownTargets(cfg, snap) {
		if prev, ok := r.lastLocal[key]; ok {
			local = append(local, prev) // a reload never removes rules before the new target is known
		}
	}
	full := r.resyncDue
	r.resyncDue = false
	err = r.rules.sync(ctx, cfg, local, full, r.log, r.m)
	if r.health != nil && snap != nil {
		r.health.Programmed(cfg, local, err == nil)
	}
	if err == nil {
		r.lastLocal = make(map[netops.ServiceKey]netops.LocalService, len(local))
		for _, s := range local {
			r.lastLocal[s.Key] = s
		}
	}
	if err != nil {
		r.resyncDue = r.resyncDue || full // a failed check is tried again at the next sync
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// converge makes VIP bindings and sysctls equal to desired, through the same Diff and Apply the
// director uses (with no IPVS).
func (r *Realserver) converge(cfg *config.Config, owned map[netip.Addr]bool, desired *reconcile.State) (summary string, err error) {
	k := reconcile.Kernel{Links: r.links, Sysctl: r.sysctl}
	keys := make([]string, 0, len(desired.Sysctls))
	for key := range desired.Sysctls {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	// ReadActual always returns a state, with what it could not read left out: a VIP it could
	// not list looks unbound, so Cleanup would skip it and report success with the VIP still
	// bound. The read error is reported with the plan's, never dropped.
	actual, readErr := reconcile.ReadActual(k, cfg.Node.VIPInterface, owned, keys)
	plan := reconcile.Diff(desired, actual, reconcile.DiffOptions{Owned: owned})
	if plan.Empty() {
		return plan.Summary(), readErr
	}
	r.log.Info("applying realserver plan", "ops", len(plan.Ops), "summary", plan.Summary())
	r.log.Debug("realserver plan", "plan", plan) // lazily: see Plan.LogValue
	if r.record != nil {
		// Written before the kernel changes: a kill between the two still knows the originals.
		if err := r.record.Remember(plan); err != nil {
			return plan.Summary(), errors.Join(readErr, fmt.Errorf("recording the sysctls to set back later: %w", err))
		}
	}
	return plan.Summary(), errors.Join(readErr, reconcile.Apply(k, plan))
}

// Cleanup removes the chains, unbinds the VIPs and sets back the sysctls it overwrote (with a
// record: ARP settings a director on this node needs, rp_filter). Every error is reported.
func (r *Realserver) Cleanup(ctx context.Context) error {
	var errs []error
	if r.health != nil {
		r.health.Stopped() // before the rules go: never claim what is being removed
	}
	cfg, owned := r.current()
	if err := r.rules.cleanup(ctx, cfg); err != nil {
		errs = append(errs, err)
	}
	if _, err := r.converge(cfg, owned, reconcile.NewState(cfg.Node.VIPInterface)); err != nil {
		errs = append(errs, fmt.Errorf("unbinding VIPs: %w", err))
	}
	if r.record != nil {
		restored, err := r.record.Restore(r.sysctl)
		if err != nil {
			errs = append(errs, fmt.Errorf("setting sysctls back: %w", err))
		}
		if len(restored) > 0 {
			r.log.Info("sysctls set back to their values before the realserver role", "restored", restored)
		}
	}
	r.log.Info("realserver role cleaned up", "errors", len(errs))
	return errors.Join(errs...)
}

// checkNode says when this node's name is not in the snapshot, where it would find its own
// endpoints: kubelet registers the lowercased hostname, so a --node-name or node.name that
// differs (in case, or a typo) makes the role serve nothing, silently until now. One log line
// per change, the status's nodeProblem, and /readyz not ready while it lasts.
func (r *Realserver) checkNode(snap *kube.Snapshot) {
	if snap == nil {
		return
	}
	_, ok := snap.Nodes[r.node.Name]
	if ok == !r.nodeMissing {
		return
	}
	r.nodeMissing = !ok
	problem := ""
	if !ok {
		problem = fmt.Sprintf("node %q is not in the Kubernetes snapshot: no local service is served (set node.name or --node-name to the name kubelet registered)", r.node.Name)
		r.log.Warn("this node is not in the Kubernetes snapshot; no local service is served", "node", r.node.Name, "nodes", len(snap.Nodes))
	} else {
		r.log.Info("this node is in the Kubernetes snapshot now", "node", r.node.Name)
	}
	if r.status != nil {
		r.status.SetNodeProblem(problem)
	}
}
