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

// LocalServices is what this node hands to its own pods, as iptables DNAT chains (the seed's
// traffic pinning: no kube-proxy hop, no traffic leaving the node again).
//
// On a realserver every Kubernetes-backed service with ready endpoints on this node takes all
// of the VIP traffic that reaches it (probability 1). On a colocated director each service
// takes local/total of its new connections (this node's ready endpoints over all eligible
// ready endpoints) before IPVS sees the packet; the rest falls through to IPVS, which never has
// this node as a destination. An isolated director serves nothing itself.
func LocalServices(cfg *config.Config, snap *kube.Snapshot, node Node) []netops.LocalService {
	if snap == nil {
		if node.Role == schema.RoleRealserver && cfg.Kubernetes == nil {
			return staticZone(cfg, node) // a static realserver: no pods, in-zone clients only
		}
		return nil
	}
	colocated := schema.Directs(node.Role) && cfg.Colocation == schema.ColocationColocated
	if node.Role != schema.RoleRealserver && !colocated {
		return nil
	}
	include := cfg.Kubernetes != nil && cfg.Kubernetes.IncludeCordoned
	self, ok := snap.Nodes[node.Name]
	if !ok {
		return nil
	}
	var out []netops.LocalService
	add := func(s *schema.Service, eps []netip.AddrPort, prob float64) {
		for _, p := range s.Protocols {
			proto, _ := netops.ParseProto(p)
			out = append(out, netops.LocalService{
				Name:        localName(s),
				Key:         netops.ServiceKey{VIP: s.VIP, Port: uint16(s.Port), Proto: proto},
				Endpoints:   eps,
				Probability: prob,
			})
		}
	}
	// zone serves clients inside the zone only: the realserver's own processes and pods,
	// for a VIP this node has no ready endpoint of (see netops.LocalService.Zone).
	zone := func(s *schema.Service, to []netops.Target, masq bool) {
		if len(to) == 0 || !cfg.Rules.InZone {
			return
		}
		for _, p := range s.Protocols {
			proto, _ := netops.ParseProto(p)
			out = append(out, netops.LocalService{
				Name:           localName(s),
				Key:            netops.ServiceKey{VIP: s.VIP, Port: uint16(s.Port), Proto: proto},
				Zone:           to,
				ZoneMasquerade: masq,
			})
		}
	}
	mgmt := ManagementServices(cfg)
	for i := range len(cfg.Services) + len(mgmt) {
		var s *schema.Service
		if i < len(cfg.Services) {
			s = &cfg.Services[i]
		} else {
			s = &mgmt[i-len(cfg.Services)]
		}
		fam := family.Of(s.VIP)
		if !self.Eligible(fam, include) {
			// A node outside the selector (or not ready) must never serve: the security
			// boundary holds on the node too, not only in the director's choice of
			// destinations. Nor does one without an address of the VIP's family, which no
			// director sends that family's traffic to.
			continue
		}
		if s.Kubernetes == nil {
			switch ep := node.HealthOf(fam); {
			case s.Backends == nil && !colocated && ep.IsValid():
				// The management service without a target: this node's health endpoint
				// answers it, so curl VIP:port/healthz names the node that got the request.
				add(s, []netip.AddrPort{ep}, 1)
			case s.Backends != nil && !colocated && staticInZone(s, node):
				zone(s, backendTargets(s), true)
			}
			continue
		}
		st := snap.Services[kube.RefOf(s.Kubernetes, s.VIP)]
		local := st.ReadyOn(node.Name)
		if len(local) == 0 {
			if !colocated {
				zone(s, remoteTargets(st, snap, node.Name, fam, include), false)
			}
			continue
		}
		prob := 1.0
		if colocated {
			total := 0
			for name, n := range st.ReadyByNode() {
				if nd, ok := snap.Nodes[name]; ok && nd.Eligible(fam, include) {
					total += n
				}
			}
			prob = float64(len(local)) / float64(total)
		}
		eps := make([]netip.AddrPort, len(local))
		for j, e := range local {
			eps[j] = netip.AddrPortFrom(e.Address, e.Port)
		}
		add(s, eps, prob)
	}
	return out
}

// remoteTargets are st's ready endpoints on the eligible nodes other than self, weight 1 each:
// the director weighs a node by its ready endpoints and the node spreads evenly over them, so
// each endpoint takes the same share.
func remoteTargets(st kube.ServiceState, snap *kube.Snapshot, self string, fam family.Family, include bool) []netops.Target {
	var out []netops.Target
	for _, e := range st.Endpoints {
		if !e.Ready || e.NodeName == self || !fam.Has(e.Address) {
			continue
		}
		if nd, ok := snap.Nodes[e.NodeName]; !ok || !nd.Eligible(fam, include) {
			continue
		}
		out = append(out, netops.Target{Addr: netip.AddrPortFrom(e.Address, e.Port), Weight: 1})
	}
	return out
}

// staticZone is what a realserver without Kubernetes serves: its static services in-zone.
func staticZone(cfg *config.Config, node Node) []netops.LocalService {
	if !cfg.Rules.InZone {
		return nil
	}
	var out []netops.LocalService
	for i := range cfg.Services {
		s := &cfg.Services[i]
		to := backendTargets(s)
		if s.Backends == nil || !staticInZone(s, node) || len(to) == 0 {
			continue
		}
		for _, p := range s.Protocols {
			proto, _ := netops.ParseProto(p)
			out = append(out, netops.LocalService{Name: localName(s),
				Key:  netops.ServiceKey{VIP: s.VIP, Port: uint16(s.Port), Proto: proto},
				Zone: to, ZoneMasquerade: true})
		}
	}
	return out
}

// staticInZone reports whether a static service is served to in-zone clients by DNAT to its
// backends: only with forwarding nat, where a backend listens on its own address and port
// (with dr or tunnel it listens on the VIP, which a DNAT to its address would not reach), and
// only when this node is not one of them (its own socket on the VIP serves then).
func staticInZone(s *schema.Service, node Node) bool {
	return s.IPVS != nil && s.IPVS.Forwarding == schema.ForwardNAT && !isBackend(s, node.Addrs)
}

// isBackend reports whether one of s's backends is an address of this node: the service then
// runs here, listening on the VIP (bound on the node) or on every address, and in-zone clients
// reach it as before, without a DNAT elsewhere.
func isBackend(s *schema.Service, addrs []netip.Addr) bool {
	for _, b := range s.Backends {
		if slices.Contains(addrs, b.Address.Unmap()) {
			return true
		}
	}
	return false
}

// backendTargets are a static service's backends with their weights (port 0: the service's).
func backendTargets(s *schema.Service) []netops.Target {
	var out []netops.Target
	for _, b := range s.Backends {
		w := 1
		if b.Weight != nil {
			w = *b.Weight
		}
		port := b.Port
		if port == 0 {
			port = s.Port
		}
		if w > 0 {
			out = append(out, netops.Target{Addr: netip.AddrPortFrom(b.Address, uint16(port)), Weight: w})
		}
	}
	return out
}

// UnknownTargets are the virtual services of cfg whose Kubernetes target snap does not know
// (see kube.Snapshot.Knows): a reload pointed them at a target whose watch has not synced.
// A realserver keeps the rules it has for them until it does.
func UnknownTargets(cfg *config.Config, snap *kube.Snapshot) map[netops.ServiceKey]bool {
	if snap == nil {
		return nil
	}
	var out map[netops.ServiceKey]bool
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if s.Kubernetes == nil || snap.Knows(kube.RefOf(s.Kubernetes, s.VIP)) {
			continue
		}
		if out == nil {
			out = map[netops.ServiceKey]bool{}
		}
		for _, p := range s.Protocols {
			proto, _ := netops.ParseProto(p)
			out[netops.ServiceKey{VIP: s.VIP, Port: uint16(s.Port), Proto: proto}] = true
		}
	}
	return out
}

// localName labels a local service in its chain's comment.
func localName(s *schema.Service) string {
	if s.Name != "" || s.Kubernetes == nil {
		return s.Name
	}
	return fmt.Sprintf("%s/%s:%s", s.Kubernetes.Namespace, s.Kubernetes.Service, s.Kubernetes.PortName)
}

// RealserverDesired is the realserver role's addresses and sysctls: every service VIP bound
// on node.vipInterface, and the ARP settings that keep this node from answering ARP for them
// (only the director may: arp_ignore=1 answers only for addresses of the receiving interface,
// arp_announce=2 never uses a VIP as the source of its own ARP requests). With tunnel
// forwarding, tunl0 must accept decapsulated packets whose source is the client, whose route
// is out of another interface: reverse-path filtering must be OFF on tunl0, loose (2) is not
// enough. tunl0 has no address, and for an interface without one the kernel's
// fib_validate_source rejects such a source in strict and loose mode alike (seen in the e2e
// guest: the packets count as IPReversePathFilter drops). The kernel uses the larger of
// conf/all and conf/tunl0, so both are set to 0; every other interface keeps its own value
// (systemd distributions set rp_filter on each interface and leave conf/all at 0).
//
// tunnels lists the families whose VIPs some service tunnels to this node, in family.All
// order: each needs its catch-all decapsulation device (netops.EnsureTunnel). IPv6 needs no
// sysctl for it: it has no reverse-path filter, and a realserver never answers neighbour
// solicitations for a VIP that is not on the receiving interface.
func RealserverDesired(cfg *config.Config) (st *State, tunnels []family.Family) {
	st = NewState(cfg.Node.VIPInterface)
	tunnelled := map[family.Family]bool{}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		st.VIPs[s.VIP] = true
		if s.IPVS.Forwarding == schema.ForwardTunnel {
			tunnelled[family.Of(s.VIP)] = true
		}
	}
	if cfg.Management.Port > 0 {
		// The management service is on every VIP of the pool (see ManagementServices).
		for _, vip := range cfg.VIPPool {
			st.VIPs[vip] = true
			if cfg.Defaults.IPVS.Forwarding == schema.ForwardTunnel {
				tunnelled[family.Of(vip)] = true
			}
		}
	}
	for _, dev := range []string{"all", cfg.Node.Interface} {
		st.Sysctls["net/ipv4/conf/"+dev+"/arp_ignore"] = strconv.Itoa(1)
		st.Sysctls["net/ipv4/conf/"+dev+"/arp_announce"] = strconv.Itoa(2)
	}
	if tunnelled[family.IPv4] {
		st.Sysctls["net/ipv4/conf/all/rp_filter"] = "0"
		st.Sysctls["net/ipv4/conf/tunl0/rp_filter"] = "0"
	}
	for _, f := range family.All {
		if tunnelled[f] {
			tunnels = append(tunnels, f)
		}
	}
	return st, tunnels
}
