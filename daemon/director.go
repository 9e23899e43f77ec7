package daemon

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/netops/nftables"
	"github.com/ravel-lb/ravel/reconcile"
	"github.com/ravel-lb/ravel/schema"
)

// Announcer makes the link learn a VIP: gratuitous ARP for IPv4, a neighbour advertisement
// for IPv6 (netops.Neighbours in production).
type Announcer interface {
	Announce(vip netip.Addr) error
}

// Answerer is an Announcer that also answers neighbour solicitations for the IPv6 VIPs, which
// the kernel does not do for addresses on the dummy device (netops.Neighbours).
type Answerer interface {
	Serve(vips []netip.Addr) error
	Answered() uint64
}

// Director is the director role's reconcile loop.
//
// Everything below is owned by the goroutine running Run; nothing is shared.
type Director struct {
	cfg      *config.Config
	node     reconcile.Node
	kernel   reconcile.Kernel
	garp     Announcer    // may be nil
	served   []netip.Addr // the IPv6 VIPs the Answerer answers for, sorted
	answered uint64       // its Answered() when last read
	rules    localRules   // the colocated share's rules; none set: no rules at all
	log      *slog.Logger
	m        *Metrics
	status   *Status // may be nil
	now      func() time.Time
	// reloads carries configs from Reload to the Run goroutine, the only one that touches
	// the fields below.
	reloads chan reloadRequest
	// The periodic resync's read of the kernel runs outside the loop (resync.go): reading
	// says one is under way, touched holds the services the loop applied ops to meanwhile,
	// fullSyncs counts the full syncs, and fullReads delivers the read.
	reading   bool
	touched   map[netops.ServiceKey]bool
	fullSyncs uint64
	fullReads chan fullRead

	owned map[netip.Addr]bool
	// retired are VIPs a reload removed from vipPool: still treated as owned until a full
	// sync has removed their services and binding, so that dropping a VIP from the config
	// takes it out of the kernel rather than leaving it unowned and bound.
	retired    map[netip.Addr]bool
	vipSeries  map[netip.Addr]bool // VIPs with per-VIP metric series
	counted    gaugeState          // what the gauges last counted
	snap       *kube.Snapshot
	desired    *reconcile.State
	drains     reconcile.Drains
	fullResync bool              // set after a failed apply: the next cycle reads the whole kernel state
	retry      reconcile.Backoff // when the next full resync after a failure may run
	failure    map[string]string // the error last logged per failing step, until a sync succeeds
	announced  map[netip.Addr]bool
	// arpRound are the VIPs the periodic announcement has still to announce, a chunk per turn
	// of the loop (arpMore says a chunk is due): 10,000 VIPs in one turn held every
	// EndpointSlice change for 0.35–1.1 s every 5 s in the QEMU guest.
	arpRound   []netip.Addr
	arpMore    chan struct{}
	checks     *Checks             // nil: no health checks
	held       map[string]bool     // services under the all-failing hold, by label
	mgmt       *ManagementListener // nil: the director never answers the management port
	record     *SysctlRecord       // what a realserver role on this node overwrote; may be nil
	arpProblem string              // the ARP conflict last reported, "" when none
	backends   tablesBackendCheck  // colocated: kube-proxy's chains in the other backend
	bgp        VIPAnnouncer        // node.role bgp; nil otherwise
	bgpDrain   chan bool           // DrainBGP to Run
	bgpDrained bool
}

// SetManagement gives the director the listeners it answers management.port with (static
// backends only). Call before Run.
func (d *Director) SetManagement(m *ManagementListener) { d.mgmt = m }

// NewDirector returns a director for cfg. garp may be nil (no ARP announcements).
func NewDirector(cfg *config.Config, node reconcile.Node, k reconcile.Kernel, garp Announcer, log *slog.Logger, m *Metrics) *Director {
	return &Director{
		cfg: cfg, node: node, kernel: k, garp: garp, log: log, m: m, now: time.Now,
		owned:     reconcile.OwnedVIPs(cfg),
		retired:   map[netip.Addr]bool{},
		vipSeries: map[netip.Addr]bool{},
		announced: map[netip.Addr]bool{},
		arpMore:   make(chan struct{}, 1),
		fullReads: make(chan fullRead),
		retry:     reconcile.Backoff{Min: time.Second, Max: 30 * time.Second},
		failure:   map[string]string{},
		reloads:   make(chan reloadRequest),
		held:      map[string]bool{},
	}
}

// SetChecks gives the director its health checks; their results gate weights. Call before
// Run, and run c.Run beside it.
func (d *Director) SetChecks(c *Checks) {
	d.checks = c
	c.Sync(d.cfg, d.snap, d.node)
}

// reportHealth puts what fails its checks, and the held services, into the status.
func (d *Director) reportHealth() {
	if d.status == nil || d.checks == nil {
		return
	}
	held := make([]string, 0, len(d.held))
	for label := range d.held {
		held = append(held, label)
	}
	slices.Sort(held)
	d.status.SetHealth(d.checks.Unhealthy(), held)
}

// health is the checks as Desired reads them: nil, not a nil *Checks, when there are none.
func (d *Director) health() reconcile.Health {
	if d.checks == nil {
		return nil
	}
	return d.checks
}

// SetStatus gives the director the shared status it reports its syncs to. Call before Run.
func (d *Director) SetStatus(s *Status) { d.status = s }

type reloadRequest struct {
	cfg  *config.Config
	done chan struct{}
}

// Reload hands cfg to the running director and returns once it runs it: after the sync that
// applies it by diff (only what changed is touched; see reloadSync). A sync that fails is
// retried by the next full resync from the whole desired state; Reload does not report it.
// cfg must not change what RestartRequired refuses.
func (d *Director) Reload(ctx context.Context, cfg *config.Config) error {
	req := reloadRequest{cfg: cfg, done: make(chan struct{})}
	select {
	case d.reloads <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ownedAfterReload returns the VIPs owned under cfg plus those retired: owned before and not
// under cfg, added to retired, which keeps them until a sync has removed them.
func ownedAfterReload(owned, retired map[netip.Addr]bool, cfg *config.Config) map[netip.Addr]bool {
	next := reconcile.OwnedVIPs(cfg)
	for vip := range owned {
		if !next[vip] {
			retired[vip] = true
		}
	}
	for vip := range next {
		delete(retired, vip)
	}
	for vip := range retired {
		next[vip] = true
	}
	return next
}

// setConfig switches to cfg. VIPs that left the pool are retired, not forgotten: see retired.
func (d *Director) setConfig(cfg *config.Config) {
	d.cfg, d.owned = cfg, ownedAfterReload(d.owned, d.retired, cfg)
	// Per-service state computed from the old config is recomputed by the full sync.
	d.desired = nil
	if d.checks != nil {
		d.checks.Sync(cfg, d.snap, d.node)
	}
	if d.mgmt != nil {
		d.mgmt.Sync(cfg)
	}
}

// SetColocated gives the director the iptables chains through which its own pods take their
// share of new connections before IPVS sees them (colocation: colocated). With colocation
// isolated the director only removes ravel chains it finds there. Call before Run.
func (d *Director) SetColocated(t iptables.Tables) { d.rules.ipt = t }

// SetNFTables gives the director ravel's nftables table, as Realserver.SetNFTables. Call
// before Run.
func (d *Director) SetNFTables(t *nftables.Tables, use bool) {
	d.rules.nft, d.rules.useNFT = t, use && t != nil
}

// SetColocated6 gives the director the way to open ip6tables' chains, for its own pods' share
// of the IPv6 services (opened once the pool has an IPv6 VIP, as the realserver does). Call
// before Run.
func (d *Director) SetColocated6(open func() (iptables.Tables, error)) { d.rules.t6.open = open }

// Run reconciles until ctx ends. With a Kubernetes source (snapshots non-nil) it waits for the
// first snapshot before programming anything, so a half-synced cache never empties a service.
// On return the kernel is left exactly as it is: a restart adopts it and converges by diff.
func (d *Director) Run(ctx context.Context, snapshots <-chan *kube.Snapshot) error {
	if snapshots != nil {
		d.log.Info("waiting for the first complete Kubernetes snapshot before programming")
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case req := <-d.reloads: // nothing programmed yet: the first sync uses it
				d.setConfig(req.cfg)
				close(req.done)
			case s, ok := <-snapshots:
				if !ok {
					return nil
				}
				d.setSnapshot(s)
				break wait
			}
		}
	}
	if d.mgmt != nil {
		d.mgmt.Sync(d.cfg)
		defer d.mgmt.Close()
	}
	d.FullSync()
	d.checkBackends()

	resync := time.NewTicker(max(d.cfg.Resync.D(), time.Second))
	defer resync.Stop()
	// Drains finish when a destination has no connections left or its timeout passes; check
	// often while any is pending, so a drained destination does not linger a whole resync.
	drainTick := time.NewTicker(time.Second)
	defer drainTick.Stop()
	arp := time.NewTicker(time.Hour)
	defer arp.Stop()
	arpC := d.arpTicker(arp)
	var checkC <-chan checkResult
	if d.checks != nil {
		checkC = d.checks.Results()
	}
	for {
		select {
		case <-ctx.Done():
			d.log.Info("director stopping; kernel state is left as it is")
			return nil
		case r := <-checkC:
			d.OnCheck(r)
		case drained := <-d.bgpDrain:
			if drained != d.bgpDrained {
				d.bgpDrained = drained
				d.log.Warn("BGP drain", "drained", drained)
				d.announceBGP()
			}
		case s, ok := <-snapshots:
			if !ok {
				// The source stopped (only when ctx ends): keep the last state programmed.
				snapshots = nil
				continue
			}
			d.OnSnapshot(s)
		case req := <-d.reloads:
			committed, old := d.desired, d.cfg
			d.setConfig(req.cfg)
			if !d.reloadSync(old, committed) {
				d.FullSync()
			}
			resync.Reset(max(d.cfg.Resync.D(), time.Second))
			arpC = d.arpTicker(arp)
			close(req.done)
		case <-resync.C:
			d.startFullRead(ctx)
		case r := <-d.fullReads:
			d.finishFullRead(ctx, r)
		case <-drainTick.C:
			if d.drains.Pending() > 0 || d.retryDue() {
				d.FullSync()
			}
		case <-arpC:
			d.startARPRound()
		case <-d.arpMore:
			d.announceChunk()
		}
	}
}

// arpTicker sets t to the configured announcement interval and returns its channel, or nil
// when periodic announcements are off.
func (d *Director) arpTicker(t *time.Ticker) <-chan time.Time {
	if d.garp == nil || d.cfg.ARP.Interval <= 0 {
		t.Stop()
		return nil
	}
	t.Reset(d.cfg.ARP.Interval.D())
	return t.C
}

func (d *Director) setSnapshot(s *kube.Snapshot) {
	first := d.snap == nil
	d.snap = s
	if d.checks != nil {
		if first || s.NodesChanged {
			d.checks.Sync(d.cfg, s, d.node)
		} else {
			d.checks.SetSnapshot(s)
		}
	}
	if d.status != nil {
		d.status.SetSnapshot(d.now())
	}
}

// OnSnapshot programs a new cluster snapshot. When only some services changed (and no node
// did), it recomputes and diffs just those; otherwise it runs a full sync.
func (d *Director) OnSnapshot(s *kube.Snapshot) {
	d.setSnapshot(s)
	if s.Stale {
		d.log.Warn("Kubernetes safety valve active: programming the last known endpoints")
	}
	if d.fullResync || s.NodesChanged || d.desired == nil {
		d.FullSync()
		return
	}
	changed := map[kube.ServiceRef]bool{}
	for _, r := range s.Changed {
		changed[r] = true
	}
	var keys []netops.ServiceKey
	var notes []reconcile.Note
	for i := range d.cfg.Services {
		s := &d.cfg.Services[i]
		if s.Kubernetes == nil || !changed[kube.RefOf(s.Kubernetes, s.VIP)] {
			continue
		}
		keys = d.recompute(i, keys, &notes)
	}
	if m := d.cfg.Management.Kubernetes; m != nil && slices.ContainsFunc(d.cfg.VIPPool, func(vip netip.Addr) bool {
		return changed[kube.RefOf(m, vip)]
	}) {
		keys = d.recomputeManagement(keys, &notes)
	}
	d.applyChains(false)
	d.partial(keys, notes)
}

// OnCheck applies one health check result. A transition recomputes only the services it
// touches and applies their difference (a weight edit per destination): never a resync.
func (d *Director) OnCheck(r checkResult) {
	tr := d.checks.Observe(r, func(msg string, args ...any) { d.log.Info(msg, args...) })
	if tr.Empty() || tr.Soft && len(d.held) == 0 {
		return // a pending failure changes nothing unless a service is held
	}
	defer d.reportHealth()
	if d.desired == nil || d.fullResync {
		return // the next full sync reads the new state
	}
	var keys []netops.ServiceKey
	var notes []reconcile.Note
	for i := range d.cfg.Services {
		if s := &d.cfg.Services[i]; tr.Services[svcID{s.VIP, uint16(s.Port)}] {
			keys = d.recompute(i, keys, &notes)
		}
	}
	if tr.Management {
		keys = d.recomputeManagement(keys, &notes)
	}
	d.partial(keys, notes)
}

// recompute puts the desired state of cfg.Services[i] into d.desired and adds its keys.
func (d *Director) recompute(i int, keys []netops.ServiceKey, notes *[]reconcile.Note) []netops.ServiceKey {
	for _, vs := range reconcile.DesiredService(d.cfg, i, d.snap, d.node, d.health(), notes) {
		d.desired.Services[vs.ServiceKey] = vs
		keys = append(keys, vs.ServiceKey)
	}
	return keys
}

func (d *Director) recomputeManagement(keys []netops.ServiceKey, notes *[]reconcile.Note) []netops.ServiceKey {
	for _, vs := range reconcile.DesiredManagement(d.cfg, d.snap, d.node, d.health(), notes) {
		d.desired.Services[vs.ServiceKey] = vs
		keys = append(keys, vs.ServiceKey)
	}
	return keys
}

// partial applies the difference of the services keys, whose desired state was just
// recomputed, reading only their destinations from the kernel.
func (d *Director) partial(keys []netops.ServiceKey, notes []reconcile.Note) {
	if len(keys) == 0 {
		return
	}
	labels := make(map[string]bool, len(keys))
	for _, k := range keys {
		labels[d.desired.Services[k].Name] = true
	}
	d.noteHolds(notes, labels)
	d.logNotes(notes)
	start := d.now()
	// A partial sync reads only the destinations of the changed services. Their scheduler and
	// flags come from the config, which a snapshot cannot change, so the desired ones stand in;
	// drift of those is repaired by the periodic full resync.
	actual := reconcile.NewState(d.cfg.Node.VIPInterface)
	for _, k := range keys {
		dests, err := d.kernel.IPVS.Destinations(k)
		if err != nil {
			continue // missing: the diff adds it
		}
		vs := &reconcile.VirtualService{Service: d.desired.Services[k].Service, Dests: map[netops.DestKey]netops.Destination{}}
		for _, dst := range dests {
			vs.Dests[dst.DestKey] = dst
		}
		actual.Services[k] = vs
	}
	plan := reconcile.DiffServices(d.desired, actual, keys, d.diffOptions())
	d.apply(plan, "partial", start)
	d.gaugesOf(d.desired, keys)
}

// noteHolds keeps the set of services under the all-failing hold, logging each once when it
// starts and when it ends. recomputed are the labels whose notes are in notes (nil: all).
func (d *Director) noteHolds(notes []reconcile.Note, recomputed map[string]bool) {
	now := map[string]bool{}
	for _, n := range notes {
		if n.Kind == "health-hold" {
			now[n.Service] = true
		}
	}
	for label := range d.held {
		if (recomputed == nil || recomputed[label]) && !now[label] {
			delete(d.held, label)
			d.log.Info("health hold over: a realserver passes its check again", "service", label)
		}
	}
	for label := range now {
		if !d.held[label] {
			d.held[label] = true
			d.log.Warn("every realserver fails its health check: keeping the last healthy ones at their weights", "service", label)
		}
	}
	d.m.HealthHold.Set(float64(len(d.held)))
}

// retryDue reports whether a failed apply should be retried now: an op the kernel refuses for
// good would otherwise cost a full read and write of the kernel state every second.
func (d *Director) retryDue() bool {
	if !d.fullResync || !d.retry.Due(d.now()) {
		return false
	}
	d.m.ApplyRetries.Inc()
	return true
}

// failed records a failed step of a sync: the next cycle is a full resync, and the error is
// logged only when it differs from the one last logged for that step.
func (d *Director) failed(step, msg string, err error) {
	d.fullResync = true
	d.m.ApplyErrors.Inc()
	if d.failure[step] == err.Error() {
		d.log.Debug(msg, "err", err, "retry_in", d.retry.Delay())
		return
	}
	d.failure[step] = err.Error()
	d.log.Error(msg, "err", err)
}

// reloadSync applies a new config at a cost that grows with what it changed, not with what
// ravel manages. When old and the new config differ only in some services, it computes the
// desired state of those alone over committed (reconcile.DesiredReload); otherwise it
// computes it whole and compares it with committed. committed is the desired state the last
// sync applied without error, kept current by the partial syncs since. It then reads back
// from the kernel only the destinations of the services that differ, the VIPs on the device
// and the sysctls. It returns false, having done nothing, when it cannot stand on committed
// (nothing committed yet, or the last apply failed and a full resync is due); the caller
// then runs FullSync. The periodic resync still reads everything and repairs drift.
func (d *Director) reloadSync(old *config.Config, committed *reconcile.State) bool {
	if committed == nil || d.fullResync {
		return false
	}
	start := d.now()
	desired, notes, keys, recomputed, ok := reconcile.DesiredReload(old, d.cfg, committed, d.snap, d.node, d.health())
	if !ok {
		desired, notes = reconcile.DesiredChecked(d.cfg, d.snap, d.node, d.health())
		keys, recomputed = reconcile.ChangedServices(committed, desired), nil
	}
	actual, err := reconcile.ReadServices(d.kernel, keys, d.cfg.Node.VIPInterface, committed, desired)
	if err == nil {
		err = reconcile.ReadVIPsAndSysctls(d.kernel, actual, d.owned, sortedKeys(desired.Sysctls))
	}
	if err != nil {
		d.log.Warn("reading the changed services from the kernel failed; running a full sync", "err", err)
		return false
	}
	d.desired = desired
	d.noteHolds(notes, recomputed)
	d.logNotes(notes)
	d.apply(reconcile.DiffReload(desired, actual, keys, d.diffOptions()), "reload", start)
	d.gaugesOf(desired, keys)
	d.reportHealth()
	d.checkARP()
	d.applyChains(false)
	return true
}

// FullSync reads every owned object from the kernel, diffs it against the desired state and
// repairs the difference (drift, drains, a previous failure).
func (d *Director) FullSync() {
	d.fullSync(d.now(), func(sysctlKeys []string) (*reconcile.State, error) {
		return reconcile.ReadActual(d.kernel, d.cfg.Node.VIPInterface, d.owned, sysctlKeys)
	})
}

// fullSync is FullSync with the kernel state from read (given the sysctl keys wanted); the
// cycle began at start (its duration counts a read made before).
func (d *Director) fullSync(start time.Time, read func(sysctlKeys []string) (*reconcile.State, error)) {
	d.fullSyncs++
	desired, notes := reconcile.DesiredChecked(d.cfg, d.snap, d.node, d.health())
	d.desired = desired
	d.noteHolds(notes, nil)
	if dev := d.cfg.Node.VIPInterface; dev != "lo" && len(desired.VIPs) > 0 {
		// The plan ensures the device only when a VIP must be bound, and Links cannot tell
		// "down" from "up": a device set down by hand would keep its VIPs but stop answering
		// for them, and no diff would see it. EnsureDummy is idempotent, so every full sync
		// repairs it.
		if err := d.kernel.Links.EnsureDummy(dev); err != nil {
			d.log.Error("ensuring the VIP device", "device", dev, "err", err)
		}
	}
	d.logNotes(notes)
	actual, readErr := read(sortedKeys(desired.Sysctls))
	if readErr != nil {
		d.log.Warn("reading kernel state was incomplete", "err", readErr)
	}
	plan := d.diff(desired, actual)
	d.apply(plan, "full", start)
	if readErr == nil && !d.fullResync && len(d.retired) > 0 {
		// The whole kernel state was read and the plan applied: the retired VIPs' services
		// and bindings are gone now, so stop owning them.
		clear(d.retired)
		d.owned = reconcile.OwnedVIPs(d.cfg)
	}
	d.gauges(desired)
	d.reportHealth()
	d.checkARP()
	d.applyChains(true)
	if d.fullResync {
		d.retry.Failed(d.now())
	} else {
		d.retry.Succeeded()
		clear(d.failure)
	}
}

// checkBackends reports kube-proxy's chains in the other iptables backend (colocated only:
// an isolated director writes no rules in front of kube-proxy's).
func (d *Director) checkBackends() {
	if d.rules.ipt != nil && !d.rules.useNFT && d.cfg.Colocation == schema.ColocationColocated {
		d.backends.run(context.Background(), d.rules.ipt, d.log, d.m, d.status)
	}
}

// applyChains programs the colocated director's local share. An isolated director given
// tables removes any ravel chains instead (Cleanup changes nothing when there are none): a
// colocated run of this node may have left them, and they would keep sending a share of new
// connections to local pods that isolated mode must never serve.
func (d *Director) applyChains(full bool) {
	if !d.rules.set() {
		return
	}
	ctx := context.Background()
	if d.cfg.Colocation != schema.ColocationColocated {
		if err := d.rules.remove(ctx); err != nil {
			d.failed("chains", "removing colocated rules failed; next cycle is a full resync", err)
		}
		return
	}
	local := reconcile.LocalServices(d.cfg, d.snap, d.node)
	if err := d.rules.sync(ctx, d.cfg, local, full, d.log, d.m); err != nil {
		d.failed("chains", "colocated rules failed; next cycle is a full resync", err)
	}
}

// diff plans a full sync and forgets the drains that the full read of actual shows over.
func (d *Director) diff(desired, actual *reconcile.State) *reconcile.Plan {
	plan := reconcile.Diff(desired, actual, d.diffOptions())
	d.drains.Forget(desired, actual)
	return plan
}

func (d *Director) diffOptions() reconcile.DiffOptions {
	return reconcile.DiffOptions{Now: d.now(), DrainTimeout: d.cfg.Defaults.DrainTimeout.D(), Drains: &d.drains, Owned: d.owned}
}

func (d *Director) apply(plan *reconcile.Plan, kind string, start time.Time) {
	now := d.now() // drains start when the plan is made, not when a long apply ends
	result := "ok"
	var applyErr error
	if !plan.Empty() {
		d.log.Info("applying plan", "kind", kind, "ops", len(plan.Ops), "summary", plan.Summary())
		d.log.Debug("plan", "kind", kind, "plan", plan) // lazily: see Plan.LogValue
		if applyErr = reconcile.Apply(d.kernel, plan); applyErr != nil {
			result = "error"
			d.failed("apply", "apply failed; next cycle is a full resync", applyErr)
		}
		for _, op := range plan.Ops {
			d.m.Ops.WithLabelValues(op.Kind.String()).Inc()
			if op.Kind == reconcile.OpBindVIP {
				delete(d.announced, op.Detail().VIP)
			}
		}
	}
	if d.touched != nil { // a resync's read is under way: it may not see these services as they are now
		for _, op := range plan.Ops {
			if op.Service.VIP.IsValid() {
				d.touched[op.Service.ServiceKey] = true
			}
		}
	}
	d.drains.Applied(plan, applyErr, now)
	if result == "ok" {
		if kind == "full" {
			d.fullResync = false
		}
		d.m.LastSync.Set(float64(d.now().Unix()))
	}
	if d.status != nil {
		rep := SyncReport{Time: d.now(), Kind: kind, Result: result, Duration: d.now().Sub(start).Round(10 * time.Microsecond).String(), Plan: plan.Summary()}
		if applyErr != nil {
			rep.Error = applyErr.Error()
		}
		d.status.RecordSync(rep)
	}
	d.m.Syncs.WithLabelValues(kind, result).Inc()
	d.m.SyncDuration.Observe(d.now().Sub(start).Seconds())
	d.m.Draining.Set(float64(d.drains.Pending()))
	d.announceNew()
	d.serveNeighbours()
	d.announceBGP()
}

func (d *Director) logNotes(notes []reconcile.Note) {
	for _, n := range notes {
		if n.Kind == "threshold-clamped" {
			d.m.ThresholdClamped.Inc()
		}
		if n.Kind == "health-hold" {
			continue // logged once per start and end by noteHolds
		}
		d.log.Warn(n.Message, "service", n.Service, "kind", n.Kind)
	}
}

// announceNew sends gratuitous ARP for VIPs bound since the last announcement, so that a
// failover is learned by switches at once rather than at the next interval.
func (d *Director) announceNew() {
	if d.garp == nil || d.desired == nil {
		return
	}
	for vip := range d.desired.VIPs {
		if !d.announced[vip] {
			d.announce(vip)
		}
	}
}

// arpChunk is how many VIPs one turn of the director's loop announces periodically: 10,000
// VIPs took 0.35–1.1 s in the QEMU guest, so a chunk about 10–30 ms, which is how long an
// EndpointSlice change may wait for it.
const arpChunk = 256

// startARPRound starts announcing every desired VIP again, a chunk at a time between the
// loop's other events. A round still going on when the next is due goes on (a VIP is
// announced at most once a round).
func (d *Director) startARPRound() {
	if d.garp == nil || d.desired == nil || len(d.arpRound) > 0 {
		return
	}
	d.arpRound = slices.AppendSeq(make([]netip.Addr, 0, len(d.desired.VIPs)), maps.Keys(d.desired.VIPs))
	d.announceChunk()
}

// announceChunk announces the next chunk of the round (the VIPs still desired) and, when some
// are left, asks the loop for another turn.
func (d *Director) announceChunk() {
	n := min(arpChunk, len(d.arpRound))
	for _, vip := range d.arpRound[:n] {
		if d.desired != nil && d.desired.VIPs[vip] {
			d.announce(vip)
		}
	}
	d.arpRound = d.arpRound[n:]
	if len(d.arpRound) > 0 {
		select {
		case d.arpMore <- struct{}{}:
		default:
		}
	}
}

func (d *Director) announce(vip netip.Addr) {
	sent, failed, what := d.m.GARPSent, d.m.GARPErrors, "gratuitous ARP"
	if vip.Is6() {
		sent, failed, what = d.m.NDPSent, d.m.NDPErrors, "neighbour advertisement"
	}
	if err := d.garp.Announce(vip); err != nil {
		failed.Inc()
		d.log.Warn(what+" failed", "vip", vip, "err", err)
		return
	}
	d.announced[vip] = true
	sent.Inc()
}

// serveNeighbours has the IPv6 VIPs of the desired state answered (see Answerer), after each
// sync: the set follows the bound VIPs.
func (d *Director) serveNeighbours() {
	a, ok := d.garp.(Answerer)
	if !ok || d.desired == nil {
		return
	}
	var v6 []netip.Addr
	for vip := range d.desired.VIPs {
		if vip.Is6() {
			v6 = append(v6, vip)
		}
	}
	slices.SortFunc(v6, netip.Addr.Compare)
	if !slices.Equal(v6, d.served) {
		if err := a.Serve(v6); err != nil {
			d.m.NDPErrors.Inc()
			d.log.Warn("cannot answer neighbour solicitations for the IPv6 VIPs", "vips", len(v6), "err", err)
			return // tried again after the next sync
		}
		if len(v6) > 0 || len(d.served) > 0 {
			d.log.Info("answering neighbour solicitations", "vips", len(v6))
		}
		d.served = v6
	}
	if n := a.Answered(); n > d.answered {
		d.m.NDPAnswered.Add(float64(n - d.answered))
		d.answered = n
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
