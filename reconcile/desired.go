package reconcile

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/schema"
)

// Node is this machine's identity, as resolved at start (config node.* overridden by flags).
type Node struct {
	Name string
	Role string
	// Health and Health6 are where this node's realserver health endpoint listens for each
	// family (health.listen, its host resolved; daemon.HealthAddrs); the management service
	// without a target is DNATed to the one of its VIP's family.
	Health, Health6 netip.AddrPort
	// Addrs are node.interface's addresses: a static service one of whose backends is this
	// node is served to in-zone clients by the node's own socket on the VIP, not DNATed.
	Addrs []netip.Addr
}

// HealthOf is where the node's health endpoint listens for family f.
func (n Node) HealthOf(f family.Family) netip.AddrPort {
	if f == family.IPv6 {
		return n.Health6
	}
	return n.Health
}

// Note is something Desired noticed and the caller should log (and count): a threshold clamped
// to the kernel's maximum, a service left without realservers.
type Note struct {
	Service string // the service's name or vip:port
	Kind    string // "threshold-clamped", "no-realservers"
	Message string
}

// Desired computes the kernel state ravel wants on this node. snap may be nil when the config
// has no kubernetes section (or before the first snapshot: then Kubernetes-backed services
// get no destinations but keep their VIP).
func Desired(cfg *config.Config, snap *kube.Snapshot, node Node) (*State, []Note) {
	return DesiredChecked(cfg, snap, node, nil)
}

// DesiredChecked is Desired with the director's health checks: a destination that fails its
// check gets weight 0 (see gateHealth). h may be nil.
func DesiredChecked(cfg *config.Config, snap *kube.Snapshot, node Node, h Health) (*State, []Note) {
	st := NewState(cfg.Node.VIPInterface)
	var notes []Note
	for k, v := range cfg.IPVSSysctls {
		st.Sysctls["net/ipv4/vs/"+k] = strconv.Itoa(v)
	}
	if !schema.Directs(node.Role) {
		return st, notes
	}
	if cfg.Colocation == schema.ColocationColocated {
		// The colocated director DNATs part of the traffic in iptables before IPVS sees it;
		// IPVS must track those connections too (the seed requires conntrack=1 here).
		st.Sysctls["net/ipv4/vs/conntrack"] = "1"
	}
	// The eligible nodes are the same for every service: find them once, not per service.
	elig := eligibleNodes(cfg, snap, node)
	var scratch []wdest
	st.Services = make(map[netops.ServiceKey]*VirtualService, len(cfg.Services))
	in := inputs{cfg: cfg, snap: snap, elig: elig, health: h}
	add := func(vss []*VirtualService) {
		for _, vs := range vss {
			st.Services[vs.ServiceKey] = vs
			st.VIPs[vs.VIP] = true
		}
	}
	for i := range cfg.Services {
		var vss []*VirtualService
		vss, scratch = in.service(&cfg.Services[i], &notes, scratch)
		add(vss)
	}
	for _, s := range ManagementServices(cfg) {
		var vss []*VirtualService
		vss, scratch = in.service(&s, &notes, scratch)
		add(vss)
	}
	if cfg.Management.Port > 0 {
		// Every VIP of the pool answers the management port, services or not: the director
		// binds them all (with static backends only, its own listener answers there).
		for _, vip := range cfg.VIPPool {
			st.VIPs[vip] = true
		}
	}
	return st, notes
}

// DesiredService computes the virtual services (one per protocol) of cfg.Services[i]. It is
// what Desired does per service, exposed so that a change to one Kubernetes service (or one
// health transition) can be recomputed without the others. h may be nil.
func DesiredService(cfg *config.Config, i int, snap *kube.Snapshot, node Node, h Health, notes *[]Note) []*VirtualService {
	in := inputs{cfg: cfg, snap: snap, elig: eligibleNodes(cfg, snap, node), health: h}
	vss, _ := in.service(&cfg.Services[i], notes, nil)
	return vss
}

// DesiredManagement computes the management services of every VIP (see ManagementServices).
func DesiredManagement(cfg *config.Config, snap *kube.Snapshot, node Node, h Health, notes *[]Note) []*VirtualService {
	in := inputs{cfg: cfg, snap: snap, elig: eligibleNodes(cfg, snap, node), health: h}
	var out []*VirtualService
	for _, s := range ManagementServices(cfg) {
		vss, _ := in.service(&s, notes, nil)
		out = append(out, vss...)
	}
	return out
}

// inputs are what every service's desired state is computed from.
type inputs struct {
	cfg    *config.Config
	snap   *kube.Snapshot
	elig   [2]eligible // IPv4's and IPv6's (eligibleNodes)
	health Health
}

// eligible are the nodes of a snapshot that may be IPVS destinations, in name order.
type eligible struct {
	addrs []netip.Addr
	index map[string]int // node name → position in addrs
}

// eligibleNodes finds the nodes of snap that may receive traffic under cfg, for each family
// (IPv4 first): a service's destinations are the nodes' addresses of its VIP's family. It
// leaves out the director's own node, which is never an IPVS destination: isolated mode keeps
// it out entirely, colocated mode serves its share in iptables before IPVS.
func eligibleNodes(cfg *config.Config, snap *kube.Snapshot, node Node) [2]eligible {
	var out [2]eligible
	if snap == nil {
		return out
	}
	for i, f := range family.All {
		names := snap.EligibleNodes(f, cfg.Kubernetes != nil && cfg.Kubernetes.IncludeCordoned)
		e := eligible{addrs: make([]netip.Addr, 0, len(names)), index: make(map[string]int, len(names))}
		for _, name := range names {
			if name == node.Name {
				continue
			}
			e.index[name] = len(e.addrs)
			e.addrs = append(e.addrs, snap.Nodes[name].AddressOf(f))
		}
		out[i] = e
	}
	return out
}

// eligibleOf is the eligible nodes of family f.
func (in *inputs) eligibleOf(f family.Family) eligible {
	if f == family.IPv6 {
		return in.elig[1]
	}
	return in.elig[0]
}

// wdest is a destination and its weight, before thresholds are split.
type wdest struct {
	key    netops.DestKey
	weight int
}

// service computes the virtual services of s. It uses scratch (which may be nil) for its
// temporary list and returns it for the next call.
func (in *inputs) service(s *schema.Service, notes *[]Note, scratch []wdest) ([]*VirtualService, []wdest) {
	snap, elig := in.snap, in.eligibleOf(family.Of(s.VIP))
	label := s.Name
	if label == "" {
		label = netip.AddrPortFrom(s.VIP, uint16(s.Port)).String()
	}
	o := s.IPVS // the loader resolved it: every field is set
	fwd, _ := netops.ParseForward(o.Forwarding)
	var flags netops.SchedFlags
	for _, f := range o.Flags {
		b, _ := netops.ParseSchedFlag(f)
		flags |= b
	}
	flags = serviceFlags(o.Scheduler, flags)

	dests := scratch[:0]
	switch {
	case s.Backends != nil:
		for _, b := range s.Backends {
			dests = append(dests, wdest{key: netops.DestKey{Addr: b.Address, Port: uint16(b.Port)}, weight: *b.Weight})
		}
	case s.Kubernetes == nil && snap != nil:
		// The management service without a target: every eligible node's health endpoint
		// answers it (the realserver DNATs it there), one share each.
		for _, a := range elig.addrs {
			dests = append(dests, wdest{key: netops.DestKey{Addr: a, Port: uint16(s.Port)}, weight: 1})
		}
	case s.Kubernetes != nil && snap != nil && !snap.Knows(kube.RefOf(s.Kubernetes, s.VIP)):
		// The snapshot comes from watches that do not follow this target (a reload pointed
		// the service at it and its watch has not synced): keep what the kernel has.
		return in.keep(s, label), dests
	case s.Kubernetes != nil && snap != nil:
		// Each eligible node weighted by its ready endpoints of the service (0 for none).
		for _, a := range elig.addrs {
			dests = append(dests, wdest{key: netops.DestKey{Addr: a, Port: uint16(s.Port)}})
		}
		for _, e := range snap.Services[kube.RefOf(s.Kubernetes, s.VIP)].Endpoints {
			if j, ok := elig.index[e.NodeName]; ok && e.Ready {
				dests[j].weight = min(dests[j].weight+1, netops.MaxWeight)
			}
		}
	}

	held, allDown := gateHealth(in.health, s.VIP, uint16(s.Port), dests, s.Backends == nil, s.SorryServer != nil)
	if held && notes != nil {
		*notes = append(*notes, Note{Service: label, Kind: "health-hold", Message: "every realserver fails its health check: keeping the last healthy ones at their weights rather than emptying the service"})
	}
	if allDown && s.SorryServer != nil {
		dests = append(dests, wdest{key: netops.DestKey{Addr: s.SorryServer.Address, Port: uint16(s.SorryServer.Port)}, weight: 1})
	}
	total := 0
	for _, d := range dests {
		total += d.weight
	}
	if SchedZeroPolicy(o.Scheduler).Omit {
		// sh and dh would give a weight-0 destination a hash bucket (see ZeroPolicy).
		dests = slices.DeleteFunc(dests, func(d wdest) bool { return d.weight == 0 })
	}
	if total == 0 && notes != nil {
		*notes = append(*notes, Note{Service: label, Kind: "no-realservers", Message: "no destination has a non-zero weight: the VIP stays bound but the service has no realservers"})
	}
	x, y := *o.UpperThreshold, *o.LowerThreshold
	clamped := false
	var out []*VirtualService
	for _, p := range s.Protocols {
		proto, _ := netops.ParseProto(p)
		key := netops.ServiceKey{VIP: s.VIP, Port: uint16(s.Port), Proto: proto}
		vs := &VirtualService{
			Service: netops.Service{ServiceKey: key, Scheduler: o.Scheduler, Flags: flags},
			Name:    label,
			Dests:   make(map[netops.DestKey]netops.Destination, len(dests)),
			Held:    held,
		}
		for _, d := range dests {
			up, c1 := split(x, d.weight, total)
			lo, c2 := split(y, d.weight, total)
			clamped = clamped || c1 || c2
			vs.Dests[d.key] = netops.Destination{DestKey: d.key, Weight: d.weight, Forward: fwd, Upper: up, Lower: lo}
		}
		out = append(out, vs)
	}
	if clamped && notes != nil {
		*notes = append(*notes, Note{Service: label, Kind: "threshold-clamped", Message: fmt.Sprintf("a realserver's share of the thresholds (upper %d, lower %d) exceeds the kernel's per-realserver maximum %d: clamped", x, y, netops.MaxWeight)})
	}
	return out, dests
}

// keep is the virtual services of s while its target is unknown (see VirtualService.Keep).
func (in *inputs) keep(s *schema.Service, label string) []*VirtualService {
	o := s.IPVS
	var flags netops.SchedFlags
	for _, f := range o.Flags {
		b, _ := netops.ParseSchedFlag(f)
		flags |= b
	}
	flags = serviceFlags(o.Scheduler, flags)
	out := make([]*VirtualService, 0, len(s.Protocols))
	for _, p := range s.Protocols {
		proto, _ := netops.ParseProto(p)
		out = append(out, &VirtualService{
			Service: netops.Service{ServiceKey: netops.ServiceKey{VIP: s.VIP, Port: uint16(s.Port), Proto: proto}, Scheduler: o.Scheduler, Flags: flags},
			Name:    label, Dests: map[netops.DestKey]netops.Destination{}, Keep: true,
		})
	}
	return out
}

// split gives a destination its share of a service-wide threshold, in proportion to its
// weight and rounded up (so the shares add up to at least the threshold), clamped to the
// kernel's per-realserver maximum. A weight-0 destination gets no new connections anyway; it
// gets threshold 0.
func split(threshold, weight, total int) (uint32, bool) {
	if threshold <= 0 || weight <= 0 || total <= 0 {
		return 0, false
	}
	share := (int64(threshold)*int64(weight) + int64(total) - 1) / int64(total)
	if share > netops.MaxWeight {
		return netops.MaxWeight, true
	}
	return uint32(share), false
}

// OwnedVIPs is the set of addresses ravel may touch: the config's vipPool.
func OwnedVIPs(cfg *config.Config) map[netip.Addr]bool {
	m := make(map[netip.Addr]bool, len(cfg.VIPPool))
	for _, a := range cfg.VIPPool {
		m[a] = true
	}
	return m
}
