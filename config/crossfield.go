package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/schema"
)

// checkCrossField checks the rules that relate several keys.
func (d *decoder) checkCrossField(c *schema.ClusterConfig) {
	if c.APIVersion != schema.APIVersion {
		d.errAt("apiVersion", "unsupported apiVersion %q (this ravel reads %q)", c.APIVersion, schema.APIVersion)
	}
	if c.Kind != schema.Kind {
		d.errAt("kind", "unsupported kind %q (this ravel reads %q)", c.Kind, schema.Kind)
	}

	pool := map[netip.Addr]bool{}
	firstVIP := map[netip.Addr]int{}
	for i, a := range c.VIPPool {
		if !a.IsValid() {
			continue
		}
		if j, dup := firstVIP[a]; dup {
			d.errAt(index("vipPool", i), "%s is already listed as vipPool[%d]", a, j)
			continue
		}
		firstVIP[a] = i
		if d.checkVIP(index("vipPool", i), a, &c.Node) {
			pool[a] = true
		}
	}

	d.checkThresholds("defaults.ipvs", c.Defaults.IPVS.UpperThreshold, c.Defaults.IPVS.LowerThreshold, true, true)

	seen := d.checkServices(c, pool)

	keys := make([]string, 0, len(c.IPVSSysctls))
	for k := range c.IPVSSysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !reSysctlKey.MatchString(k) {
			d.errAtKey(join("ipvsSysctls", k), "%s is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)", quote(k))
		}
	}

	seenPort := map[int]int{}
	for i, port := range c.Coordinator.Ports {
		if j, dup := seenPort[port]; dup {
			d.errAt(fmt.Sprintf("coordinator.ports[%d]", i), "port %d is already listed as coordinator.ports[%d]", port, j)
		} else {
			seenPort[port] = i
		}
	}
	if c.Node.VIPInterface == c.Node.Interface && c.Node.Interface != "" {
		d.errAt("node.vipInterface", "must differ from node.interface (%s): ravel creates and owns the vipInterface", c.Node.Interface)
	}
	if c.Node.Role == schema.RoleBGP && c.BGP == nil {
		d.errAt("node.role", "role bgp needs a bgp section (asn and peers)")
	}
	d.checkHealth(&c.Health)
	d.checkHealthCheck("defaults.healthCheck", &c.Defaults.HealthCheck, false)
	d.checkCheckTiming("defaults.healthCheck", c.Defaults.HealthCheck.Interval.D(), c.Defaults.HealthCheck.Timeout.D(), true, true)
	d.checkManagement(c, seen)
	d.checkBGP(c)
	if reTable.MatchString(c.Rules.Table) {
		if err := schema.TableConflict(c.Rules.Table); err != nil {
			d.errAt("rules.table", "%v", err)
		}
	}
	if reChain.MatchString(c.IPTables.Chain) {
		// The pattern covers length and characters; a valid name may still be a built-in
		// or own another program's chains (KUBE-*, DOCKER*, cali-*, ...), which ravel would
		// delete as stale.
		if err := schema.ChainPrefixConflict(c.IPTables.Chain); err != nil {
			d.errAt("iptables.chain", "%v", err)
		}
	}
}

// vkey identifies a virtual service: a vip:port:protocol serves one service only.
type vkey struct {
	vip   netip.Addr
	port  int
	proto string
}

// seenServices remembers, across services, which virtual services and names are taken.
type seenServices struct {
	vip  map[vkey]int
	name map[string]int
}

// checkServices runs checkService on every service and returns what they take. A reload
// whose edit kept every service's name, VIP, port and protocols, after a parse in which these
// checks found nothing, has the same names and virtual services at the same indexes, and its
// other services would pass again: it takes the previous parse's record and checks only the
// edited services (see sameServices). A parse in which they find something keeps no record.
// Building the two maps again was most of a one-weight reload's checks at 10,000 services.
func (d *decoder) checkServices(c *schema.ClusterConfig, pool map[netip.Addr]bool) *seenServices {
	before := len(d.errs) + d.dropped
	if seen, from, to, ok := d.sameServices(c); ok {
		for i := from; i < to; i++ {
			d.checkServiceAlone(c, i, pool)
		}
		d.chunks.next.sharedSeen = true
		if len(d.errs)+d.dropped == before { // else the next parse checks every service again
			d.chunks.next.seen, d.chunks.next.ids = seen, d.chunks.prev.ids
		}
		return seen
	}
	seen := &seenServices{vip: make(map[vkey]int, len(c.Services)), name: make(map[string]int, len(c.Services))}
	for i := range c.Services {
		d.checkService(c, i, pool, seen)
	}
	if d.chunks != nil && d.chunks.next != nil && len(d.errs)+d.dropped == before {
		ids := make([]serviceID, len(c.Services))
		for i := range c.Services {
			ids[i] = idOf(c, i)
		}
		d.chunks.next.seen, d.chunks.next.ids = seen, ids
	}
	return seen
}

// serviceID is what of a service the checks across services look at.
type serviceID struct {
	name   string
	vip    netip.Addr
	port   int
	protos []string // effective: the service's or the defaults'
}

func idOf(c *schema.ClusterConfig, i int) serviceID {
	s := &c.Services[i]
	protos := s.Protocols
	if protos == nil {
		protos = c.Defaults.Protocols
	}
	return serviceID{s.Name, s.VIP, s.Port, protos}
}

// sameServices reports whether the previous parse's record of names and virtual services
// holds for this one, and which services [from, to) must still be checked alone: the file
// was cut from the previous cut (resplit), with as many items, under the same rest of the
// file (vipPool, node and defaults); the previous parse's services did not clash; and the
// edited items have the same identity as the previous ones of their index.
func (d *decoder) sameServices(c *schema.ClusterConfig) (seen *seenServices, from, to int, ok bool) {
	l := d.chunks
	if l == nil || l.prev == nil || l.prev.seen == nil || l.sameFrom == 0 || len(l.prev.ids) != len(c.Services) ||
		len(l.items) != len(c.Services) || !bytes.Equal(l.head, l.prev.head) {
		return nil, 0, 0, false
	}
	from, to = l.sameBelow, l.sameFrom
	for i := from; i < to; i++ {
		was, now := l.prev.ids[i], idOf(c, i)
		if was.name != now.name || was.vip != now.vip || was.port != now.port || !slices.Equal(was.protos, now.protos) {
			return nil, 0, 0, false
		}
	}
	return l.prev.seen, from, to, true
}

// checkService checks the rules of services[i] that relate it to other keys. Paths are built
// only when something is reported: this runs for every service of the file.
func (d *decoder) checkService(c *schema.ClusterConfig, i int, pool map[netip.Addr]bool, seen *seenServices) {
	s := &c.Services[i]
	p := func(sub string) string { return index("services", i) + sub }
	d.checkServiceVIP(c, i, pool)
	if s.Name != "" {
		if j, dup := seen.name[s.Name]; dup {
			d.errAt(p(".name"), "name %q is already used by services[%d]", s.Name, j)
		} else {
			seen.name[s.Name] = i
		}
	}
	protos := s.Protocols
	if protos == nil {
		protos = c.Defaults.Protocols
	}
	for j, pr := range protos {
		if slices.Contains(protos[:j], pr) {
			d.errAt(p(".protocols")+"["+strconv.Itoa(j)+"]", "protocol %s is listed twice", pr)
			continue
		}
		if !s.VIP.IsValid() || s.Port == 0 {
			continue
		}
		k := vkey{s.VIP, s.Port, pr}
		if j, dup := seen.vip[k]; dup {
			d.errAt(p(""), "%s %s is already served by services[%d]", pr, netip.AddrPortFrom(s.VIP, uint16(s.Port)), j)
		} else {
			seen.vip[k] = i
		}
	}
	d.checkServiceKind(c, i)
}

// checkServiceAlone checks what of services[i] needs no other service: its VIP against the
// pool and the node, one of kubernetes and backends, and its backends.
func (d *decoder) checkServiceAlone(c *schema.ClusterConfig, i int, pool map[netip.Addr]bool) {
	d.checkServiceVIP(c, i, pool)
	d.checkServiceKind(c, i)
}

func (d *decoder) checkServiceVIP(c *schema.ClusterConfig, i int, pool map[netip.Addr]bool) {
	s := &c.Services[i]
	p := func(sub string) string { return index("services", i) + sub }
	if !s.VIP.IsValid() {
		if !d.written(p(".vip")) {
			d.errAt(p(".vip"), "is required")
		}
	} else if !pool[s.VIP] && d.checkVIP(p(".vip"), s.VIP, &c.Node) {
		// (A VIP in the pool passed checkVIP there: not checked again, nor its path built,
		// 10,000 times in a reload.)
		d.errAt(p(".vip"), "%s is not in vipPool", s.VIP)
	}
}

// checkServiceKind checks that services[i] has one of kubernetes and backends, and its backends.
func (d *decoder) checkServiceKind(c *schema.ClusterConfig, i int) {
	s := &c.Services[i]
	p := func(sub string) string { return index("services", i) + sub }
	switch {
	case s.Kubernetes != nil && s.Backends != nil:
		d.errAt(p(""), "set exactly one of kubernetes and backends, not both")
	case s.Kubernetes == nil && s.Backends == nil:
		d.errAt(p(""), "set exactly one of kubernetes and backends")
	case s.Kubernetes != nil && c.Kubernetes == nil:
		d.errAt(p(".kubernetes"), "targets a Kubernetes service, but the file has no top-level kubernetes section")
	case s.Backends != nil && len(s.Backends) == 0:
		d.errAt(p(".backends"), "must list at least one backend")
	}
	if d.chunks.validated(i) {
		return // its backends passed these checks in the previous parse, and are the same
	}
	before := len(d.errs) + d.dropped
	d.checkBackends(s, i)
	if len(d.errs)+d.dropped > before {
		d.chunks.setValid(i, false)
	}
}

// checkBackends checks the backends of services[i] against each other: addresses required
// and safe, none listed twice. They look at the service alone.
func (d *decoder) checkBackends(s *schema.Service, i int) {
	p := func(sub string) string { return index("services", i) + sub }
	var firstAt map[netip.AddrPort]int // for long lists; short ones are searched
	if len(s.Backends) > 32 {
		firstAt = make(map[netip.AddrPort]int, len(s.Backends))
	}
	for j, b := range s.Backends {
		bp := func(sub string) string { return index(p(".backends"), j) + sub }
		if !b.Address.IsValid() {
			if !d.written(bp(".address")) {
				d.errAt(bp(".address"), "is required")
			}
			continue
		}
		if unsafeKind(b.Address) != "" { // the path only when there is something to report
			d.checkBackendAddr(bp(".address"), b.Address)
		}
		if s.VIP.IsValid() && family.Of(b.Address) != family.Of(s.VIP) {
			d.errAt(bp(".address"), "%s", otherFamily(b.Address, s.VIP))
		}
		ap := backendAddr(s, j)
		if firstAt != nil {
			if k, dup := firstAt[ap]; dup {
				d.errAt(bp(""), "backend %s is already listed as backends[%d]", ap, k)
			} else {
				firstAt[ap] = j
			}
			continue
		}
		for k := range j {
			if s.Backends[k].Address.IsValid() && backendAddr(s, k) == ap {
				d.errAt(bp(""), "backend %s is already listed as backends[%d]", ap, k)
				break
			}
		}
	}
}

// backendAddr is where backend j of s is reached: its port 0 means the service port.
func backendAddr(s *schema.Service, j int) netip.AddrPort {
	b := &s.Backends[j]
	port := b.Port
	if port == 0 {
		port = s.Port
	}
	return netip.AddrPortFrom(b.Address, uint16(port))
}

// checkThresholds: X > Y > 0 when Y is set, on the effective values. p is where they apply
// (defaults.ipvs or services[i].ipvs); from says where the values the service did not set come
// from, "" when both are its own. Negative values are caught by the field rules.
func (d *decoder) checkThresholds(p string, upper, lower *int, ownUpper, ownLower bool) {
	if upper == nil || lower == nil || *upper < 0 || *lower <= 0 || *upper > *lower {
		return
	}
	const rule = "when lowerThreshold is set, upperThreshold > lowerThreshold > 0"
	switch {
	case *upper == 0:
		d.errAt(p+".lowerThreshold", "lowerThreshold %d needs an upperThreshold above it (upperThreshold 0 means no limit; %s)", *lower, rule)
	case ownLower && ownUpper:
		d.errAt(p+".lowerThreshold", "lowerThreshold %d must be below upperThreshold %d (%s)", *lower, *upper, rule)
	case ownLower:
		d.errAt(p+".lowerThreshold", "lowerThreshold %d must be below upperThreshold %d inherited from defaults.ipvs (%s)", *lower, *upper, rule)
	default:
		d.errAt(p+".upperThreshold", "upperThreshold %d must be above lowerThreshold %d inherited from defaults.ipvs (%s)", *upper, *lower, rule)
	}
}
