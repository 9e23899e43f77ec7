package daemon

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/health"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/reconcile"
	"github.com/ravel-lb/ravel/schema"
)

// svcID names a configured service by vip:port: both protocols of a service share its checks.
type svcID struct {
	vip  netip.Addr
	port uint16
}

func (s svcID) String() string { return netip.AddrPortFrom(s.vip, s.port).String() }

// backendID is one checked static backend of one service.
type backendID struct {
	svc  svcID
	dest netops.DestKey
}

// nodeCheck is the state of one realserver node: whether it answers (and is synced and not
// draining), and, sparsely, the services whose rules it says it lacks although the snapshot
// gives it ready pods. A pair that is up and settled is not kept: with 1,000 nodes and 10,000
// services, most pairs are.
type nodeCheck struct {
	name string
	// label names the check in metrics and logs: the node's name for its IPv4 address, the
	// name and "(IPv6)" for its IPv6 one, so that a dual-stack node's two checks keep series
	// of their own.
	label   string
	m       reconcile.Machine
	missing map[svcID]*reconcile.Machine
}

// backendCheck is the state of one static backend's check.
type backendCheck struct {
	m          reconcile.Machine
	rise, fall int
	hold       time.Duration
	service    string // the service's label, for logs, metrics and status
}

// checkResult is a probe's result on its way to the director's goroutine.
type checkResult struct {
	id  string
	res health.Result
}

// Checks runs the director's health checks and keeps their state: one GET of /healthz per
// realserver node per health.interval (the whole node view, whatever the number of
// services), and each static backend's healthCheck. It implements reconcile.Health.
//
// The scheduler's goroutines deliver results on a channel; everything else is owned by the
// director's goroutine (Sync, Observe, Check, Unhealthy).
type Checks struct {
	sched   *health.Scheduler
	client  *health.Client
	results chan checkResult
	m       *Metrics
	now     func() time.Time

	cfg      *config.Config
	snap     *kube.Snapshot
	nodes    map[netip.Addr]*nodeCheck   // by node address
	backends map[backendID]*backendCheck // static backends with a check
	jobs     map[string]any              // job id → *nodeCheck address or backendID
	// expect is, per node name, the Kubernetes services the snapshot gives ready pods on that
	// node: the ones whose absence from the node's view counts. Rebuilt when the snapshot
	// changes (nil: to be rebuilt).
	expect map[string]map[svcID]bool
	protos map[svcID][]string // the protocols of each configured service, by vip:port
}

// NewChecks returns the director's checks; Run starts probing.
func NewChecks(m *Metrics, maxInFlight int) *Checks {
	c := &Checks{
		client:   health.NewClient(),
		results:  make(chan checkResult, 1024),
		m:        m,
		now:      time.Now,
		nodes:    map[netip.Addr]*nodeCheck{},
		backends: map[backendID]*backendCheck{},
		jobs:     map[string]any{},
	}
	c.sched = health.NewScheduler(health.Options{
		MaxInFlight: maxInFlight,
		Jitter:      0.1,
		Client:      c.client,
		OnResult: func(id string, r health.Result) {
			c.m.HealthCheckDuration.Observe(r.Duration.Seconds())
			c.results <- checkResult{id, r}
		},
		OnInFlight: func(n int) { c.m.HealthInFlight.Set(float64(n)) },
	})
	return c
}

// Run probes until ctx ends.
func (c *Checks) Run(ctx context.Context) {
	defer c.client.Close()
	c.sched.Run(ctx)
}

// Results delivers probe results for Observe.
func (c *Checks) Results() <-chan checkResult { return c.results }

// nodeService is the service label of a realserver node's own series (its answer as a
// whole, for every service).
const nodeService = "*"

func backendLabel(b backendID) string { return netip.AddrPortFrom(b.dest.Addr, b.dest.Port).String() }

func nodeJob(a netip.Addr) string { return "node " + a.String() }
func backendJob(b backendID) string {
	return "backend " + b.svc.String() + " " + netip.AddrPortFrom(b.dest.Addr, b.dest.Port).String()
}

// Sync makes the set of checks follow cfg and snap: every eligible node (Kubernetes mode, with
// health.checkRealservers) and every static backend whose service checks it. State of checks
// that stay is kept, so a reload or a new snapshot never resets rise and fall counts.
func (c *Checks) Sync(cfg *config.Config, snap *kube.Snapshot, self reconcile.Node) {
	c.cfg, c.snap, c.expect = cfg, snap, nil
	c.protos = make(map[svcID][]string, len(cfg.Services))
	for i := range cfg.Services {
		s := &cfg.Services[i]
		c.protos[svcID{s.VIP, uint16(s.Port)}] = s.Protocols
	}
	jobs := map[string]health.Job{}
	ids := map[string]any{}
	seenNodes := map[netip.Addr]bool{}
	if cfg.Kubernetes != nil && cfg.Health.CheckRealservers && snap != nil {
		_, port := healthListenPort(cfg)
		// A node is checked on each address a service sends it traffic on: a dual-stack
		// node's IPv4 and IPv6 paths can fail apart.
		for _, f := range family.All {
			for _, name := range snap.EligibleNodes(f, cfg.Kubernetes.IncludeCordoned) {
				addr := snap.Nodes[name].AddressOf(f)
				if name == self.Name {
					continue // never a destination
				}
				seenNodes[addr] = true
				if nc := c.nodes[addr]; nc == nil || nc.name != name {
					nc = &nodeCheck{name: name, label: name}
					if f == family.IPv6 {
						nc.label = name + " (IPv6)"
					}
					c.nodes[addr] = nc
					c.m.BackendUp.WithLabelValues(nodeService, nc.label).Set(1)
				}
				id := nodeJob(addr)
				ids[id] = addr
				jobs[id] = health.Job{Interval: cfg.Health.Interval.D(), Probe: health.Probe{Kind: health.Node,
					Addr: netip.AddrPortFrom(addr, port), Timeout: cfg.Health.Timeout.D()}}
			}
		}
	}
	for a, nc := range c.nodes {
		if !seenNodes[a] {
			delete(c.nodes, a)
			c.forgetSeries(nodeService, nc.label)
			for sid := range nc.missing {
				c.forgetSeries(sid.String(), nc.label)
			}
		}
	}
	seenBackends := map[backendID]bool{}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		hc := s.HealthCheck
		if s.Backends == nil || hc == nil || hc.Type == schema.CheckNone {
			continue
		}
		sid := svcID{s.VIP, uint16(s.Port)}
		for _, b := range s.Backends {
			bid := backendID{sid, netops.DestKey{Addr: b.Address, Port: uint16(b.Port)}}
			seenBackends[bid] = true
			bc := c.backends[bid]
			if bc == nil || bc.service != serviceLabel(s) {
				if bc != nil {
					c.forgetSeries(bc.service, backendLabel(bid))
				}
				bc = &backendCheck{service: serviceLabel(s)}
				c.backends[bid] = bc
				c.m.BackendUp.WithLabelValues(bc.service, backendLabel(bid)).Set(boolGauge(bc.m.Up()))
			}
			bc.rise, bc.fall = hc.Rise, hc.Fall
			bc.hold = time.Duration(hc.Fall)*hc.Interval.D() + hc.Timeout.D()
			port := uint16(b.Port)
			if hc.Port != 0 {
				port = uint16(hc.Port)
			}
			p := health.Probe{Kind: health.TCP, Addr: netip.AddrPortFrom(b.Address, port), Timeout: hc.Timeout.D()}
			if hc.Type == schema.CheckHTTP {
				p.Kind, p.Path, p.Host, p.ExpectStatus = health.HTTP, hc.Path, hc.Host, hc.ExpectStatus
			}
			id := backendJob(bid)
			ids[id] = bid
			jobs[id] = health.Job{Interval: hc.Interval.D(), Probe: p}
		}
	}
	for bid, bc := range c.backends {
		if !seenBackends[bid] {
			delete(c.backends, bid)
			c.forgetSeries(bc.service, backendLabel(bid))
		}
	}
	c.jobs = ids
	c.sched.Set(jobs)
}

// SetSnapshot records a new snapshot whose node set did not change (Sync handles those).
func (c *Checks) SetSnapshot(snap *kube.Snapshot) { c.snap, c.expect = snap, nil }

// Transition is what a check that changed state makes the director recompute.
type Transition struct {
	// Services are the services whose destinations' health changed: a static service whose
	// backend changed, or, for a node, every service it has ready pods for (the ones where
	// its weight is above 0: health gates nothing else).
	Services map[svcID]bool
	// Management is set when a whole node changed: the management services have every node.
	Management bool
	// Soft says no state changed, only whether a failure is pending (see reconcile.Check's
	// Failing): it matters only to a service under the hold, which the director recomputes.
	Soft bool
}

// Empty reports whether nothing is to be recomputed.
func (t Transition) Empty() bool { return len(t.Services) == 0 && !t.Management }

func (t *Transition) add(sid svcID) {
	if t.Services == nil {
		t.Services = map[svcID]bool{}
	}
	t.Services[sid] = true
}

// Observe records a probe result and returns what it changed; logged once per transition.
func (c *Checks) Observe(r checkResult, log func(msg string, args ...any)) Transition {
	now := c.now()
	switch id := c.jobs[r.id].(type) {
	case netip.Addr:
		nc := c.nodes[id]
		if nc == nil {
			return Transition{}
		}
		return c.observeNode(nc, r.res, now, log)
	case backendID:
		bc := c.backends[id]
		if bc == nil {
			return Transition{}
		}
		wasFailing := bc.m.Failing()
		if !bc.m.Observe(r.res.OK, r.res.Reason, bc.rise, bc.fall, now) {
			if bc.m.Failing() != wasFailing {
				return Transition{Services: map[svcID]bool{id.svc: true}, Soft: true}
			}
			return Transition{}
		}
		backend := netip.AddrPortFrom(id.dest.Addr, id.dest.Port).String()
		c.transition(bc.service, backend, &bc.m, log)
		return Transition{Services: map[svcID]bool{id.svc: true}}
	}
	return Transition{}
}

// forgetSeries removes a backend's health series (ravel_backend_up and both of its
// ravel_health_transitions_total) when it is no longer checked: nodes and backends come and
// go, and their series must not pile up.
func (c *Checks) forgetSeries(service, backend string) {
	c.m.BackendUp.DeleteLabelValues(service, backend)
	c.m.HealthTransitions.DeleteLabelValues(service, backend, "up")
	c.m.HealthTransitions.DeleteLabelValues(service, backend, "down")
}

func (c *Checks) transition(service, backend string, m *reconcile.Machine, log func(msg string, args ...any)) {
	to := "up"
	if !m.Up() {
		to = "down"
	}
	c.m.HealthTransitions.WithLabelValues(service, backend, to).Inc()
	c.m.BackendUp.WithLabelValues(service, backend).Set(boolGauge(m.Up()))
	if m.Up() {
		log("health check passes again: weight restored", "service", service, "backend", backend)
	} else {
		log("health check failing: weight 0, connections drain", "service", service, "backend", backend, "reason", m.Reason())
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observeNode applies a node's answer: its machine says whether it answers at all (synced,
// not draining), and each Kubernetes service with ready pods on it must be in its view with
// its rules programmed.
func (c *Checks) observeNode(nc *nodeCheck, r health.Result, now time.Time, log func(string, ...any)) Transition {
	h := &c.cfg.Health
	ok, reason := r.OK, r.Reason
	v := r.View
	switch {
	case ok && v == nil:
		ok, reason = false, "no node view"
	case ok && v.Draining:
		ok, reason = false, "draining"
	case ok && !v.Synced:
		ok, reason = false, "not synced yet"
	case ok && v.Node != nc.name:
		ok, reason = false, fmt.Sprintf("answered as node %q", v.Node)
	}
	var tr Transition
	expect := c.expected()[nc.name]
	wasFailing := nc.m.Failing()
	if nc.m.Observe(ok, reason, h.Rise, h.Fall, now) {
		c.transition(nodeService, nc.label, &nc.m, log)
		tr.Management = true
		for sid := range expect {
			tr.add(sid)
		}
	} else if nc.m.Failing() != wasFailing {
		tr.Soft = true
		for sid := range expect {
			tr.add(sid)
		}
	}
	if !ok {
		return tr // the per-service view of a node that does not answer means nothing
	}
	idx := v.Index()
	check := func(sid svcID, serving bool) {
		mm := nc.missing[sid]
		if mm == nil {
			if serving {
				return
			}
			mm = &reconcile.Machine{}
			if nc.missing == nil {
				nc.missing = map[svcID]*reconcile.Machine{}
			}
			nc.missing[sid] = mm
		}
		why := "not served by the node: no rules or no local endpoint"
		if mm.Observe(serving, why, h.Rise, h.Fall, now) {
			c.transition(sid.String(), nc.label, mm, log)
			tr.add(sid)
		}
		if mm.Settled() {
			delete(nc.missing, sid)
			c.forgetSeries(sid.String(), nc.label)
		}
	}
	for sid := range expect {
		check(sid, serves(idx, sid, c.protos[sid]))
	}
	for sid := range nc.missing {
		if !expect[sid] {
			check(sid, true) // no pods there any more: the pod count gates it now
		}
	}
	return tr
}

// serves reports whether a node's view has every protocol of a service programmed with local
// endpoints.
func serves(idx map[health.ServiceID]health.ServiceView, sid svcID, protos []string) bool {
	for _, p := range protos {
		sv, ok := idx[health.ServiceID{VIP: sid.vip, Port: sid.port, Protocol: p}]
		if !ok || !sv.RulesProgrammed || sv.LocalEndpoints == 0 {
			return false
		}
	}
	return true
}

// expected builds, once per snapshot, which Kubernetes services have ready pods on each node.
func (c *Checks) expected() map[string]map[svcID]bool {
	if c.expect != nil || c.snap == nil {
		return c.expect
	}
	c.expect = map[string]map[svcID]bool{}
	for i := range c.cfg.Services {
		s := &c.cfg.Services[i]
		if s.Kubernetes == nil {
			continue
		}
		for _, e := range c.snap.Services[kube.RefOf(s.Kubernetes, s.VIP)].Endpoints {
			if !e.Ready {
				continue
			}
			m := c.expect[e.NodeName]
			if m == nil {
				m = map[svcID]bool{}
				c.expect[e.NodeName] = m
			}
			m[svcID{s.VIP, uint16(s.Port)}] = true
		}
	}
	return c.expect
}

// Check implements reconcile.Health.
func (c *Checks) Check(vip netip.Addr, port uint16, d netops.DestKey, kube bool) reconcile.Check {
	if kube {
		nc := c.nodes[d.Addr]
		if nc == nil {
			return reconcile.Check{}
		}
		h := &c.cfg.Health
		hold := time.Duration(h.Fall)*h.Interval.D() + h.Timeout.D()
		if !nc.m.Up() {
			return reconcile.Check{Checked: true, DownSince: nc.m.Since(), Hold: hold}
		}
		mm := nc.missing[svcID{vip, port}]
		if mm != nil && !mm.Up() {
			return reconcile.Check{Checked: true, DownSince: mm.Since(), Hold: hold}
		}
		return reconcile.Check{Checked: true, Up: true, Failing: nc.m.Failing() || mm != nil && mm.Failing()}
	}
	bc := c.backends[backendID{svcID{vip, port}, d}]
	if bc == nil {
		return reconcile.Check{}
	}
	return reconcile.Check{Checked: true, Up: bc.m.Up(), Failing: bc.m.Failing(), DownSince: bc.m.Since(), Hold: bc.hold}
}

// Unhealthy lists what fails its checks now, for the status.
func (c *Checks) Unhealthy() []UnhealthyBackend {
	var out []UnhealthyBackend
	for a, nc := range c.nodes {
		if !nc.m.Up() {
			out = append(out, UnhealthyBackend{Service: "*", Backend: nc.label + " (" + a.String() + ")", Reason: nc.m.Reason(), Since: nc.m.Since()})
		}
		for sid, mm := range nc.missing {
			if !mm.Up() {
				out = append(out, UnhealthyBackend{Service: sid.String(), Backend: nc.label, Reason: mm.Reason(), Since: mm.Since()})
			}
		}
	}
	for bid, bc := range c.backends {
		if !bc.m.Up() {
			out = append(out, UnhealthyBackend{Service: bc.service, Backend: netip.AddrPortFrom(bid.dest.Addr, bid.dest.Port).String(), Reason: bc.m.Reason(), Since: bc.m.Since()})
		}
	}
	slices.SortFunc(out, func(a, b UnhealthyBackend) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Backend, b.Backend))
	})
	return out
}

// UnhealthyBackend is one entry of the status's unhealthy list.
type UnhealthyBackend struct {
	Service string    `json:"service"`
	Backend string    `json:"backend"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
}

// healthListenPort splits health.listen (validated host:port) into its host (invalid when
// empty: node.interface's address) and port.
func healthListenPort(cfg *config.Config) (netip.Addr, uint16) {
	host, p, _ := net.SplitHostPort(cfg.Health.Listen)
	port, _ := strconv.ParseUint(p, 10, 16)
	a, _ := netip.ParseAddr(host)
	return a, uint16(port)
}

// serviceLabel is a service's name, or vip:port without one.
func serviceLabel(s *schema.Service) string {
	if s.Name != "" {
		return s.Name
	}
	return netip.AddrPortFrom(s.VIP, uint16(s.Port)).String() // [v6]:port: unambiguous
}
