package config

import (
	"slices"
	"strings"

	"github.com/ravel-lb/ravel/schema"
)

// The seed's rule: an invalid IPVS option value is never refused, because ravel must always
// configure a load balancer. Each value is normalized once, where it is written, and reported as
// a warning with its position; services that inherit it get the normalized value silently.

// foldProtocols lowercases the protocols of defaults and services before the field rules
// check them: `TCP` means tcp. Schedulers, forwarding methods and flags are folded where they
// are normalized (normalizeIPVS), so a fallback's warning quotes the value as written.
func (d *decoder) foldProtocols(c *schema.ClusterConfig) {
	lowerAll(c.Defaults.Protocols)
	for i := range c.Services {
		if !d.chunks.isFinal(i) { // shared with the last config: already folded
			lowerAll(c.Services[i].Protocols)
		}
	}
}

// lowerAll lowercases ss in place (strings.ToLower returns an already lowercase string as is).
func lowerAll(ss []string) {
	for i, s := range ss {
		ss[i] = strings.ToLower(s)
	}
}

// known returns v lowercased and true when that is one of values: option values are read
// case-insensitively before an unknown one falls back.
func known(v string, values []string) (string, bool) {
	l := strings.ToLower(v)
	return l, slices.Contains(values, l)
}

// normalizeIPVS fixes o in place. p is where o is written (built only for a warning);
// inherited is the scheduler o's flags belong to when o does not set its own.
func (d *decoder) normalizeIPVS(p func() string, o *schema.IPVSOptions, inherited string) {
	if l, ok := known(o.Scheduler, schema.Schedulers); ok {
		o.Scheduler = l
	} else if o.Scheduler != "" {
		d.warnAt(p()+".scheduler", "unknown scheduler %q, using wrr", o.Scheduler)
		o.Scheduler = "wrr"
	}
	if l, ok := known(o.Forwarding, schema.Forwardings); ok {
		o.Forwarding = l
	} else if o.Forwarding != "" {
		d.warnAt(p()+".forwarding", "unknown forwarding method %q, using dr", o.Forwarding)
		o.Forwarding = schema.ForwardDR
	}
	sched := o.Scheduler
	if sched == "" {
		sched = inherited
	}
	if o.Flags == nil {
		return
	}
	kept := o.Flags[:0:0]
	folded := false
	for i, written := range o.Flags {
		f := strings.ToLower(written)
		folded = folded || f != written
		owner, isFlag := schema.SchedulerFlags[f]
		switch {
		case !isFlag:
			d.warnAt(index(p()+".flags", i), "unknown flag %q dropped", written)
		case owner != sched:
			d.warnAt(index(p()+".flags", i), "flag %q belongs to scheduler %s, not %s: dropped", f, owner, sched)
		case slices.Contains(kept, f):
			d.warnAt(index(p()+".flags", i), "flag %q is listed twice: dropped", f)
		default:
			kept = append(kept, f)
		}
	}
	if len(kept) == len(o.Flags) && !folded {
		return // nothing dropped or folded: keep the decoded list
	}
	if kept == nil {
		kept = []string{}
	}
	o.Flags = kept
}

// resolve normalizes defaults and services, then fills every service's unset values from
// defaults so that the returned config is the effective one: every service has its protocols,
// a complete ipvs block and backends with ports and weights.
func (d *decoder) resolve(c *schema.ClusterConfig) {
	def := &c.Defaults.IPVS
	// In a service an empty value inherits; in defaults there is nothing to inherit from.
	if def.Scheduler == "" {
		d.warnAt("defaults.ipvs.scheduler", "empty scheduler, using wrr")
		def.Scheduler = "wrr"
	}
	if def.Forwarding == "" {
		d.warnAt("defaults.ipvs.forwarding", "empty forwarding method, using dr")
		def.Forwarding = schema.ForwardDR
	}
	d.normalizeIPVS(func() string { return "defaults.ipvs" }, def, def.Scheduler)
	for i := range c.Services {
		if d.chunks.isFinal(i) {
			continue // the last parse's effective service, under the same defaults
		}
		before := len(d.errs) + len(d.warns) + d.dropped
		d.resolveService(c, i)
		d.chunks.resolved(i, c.Services[i], len(d.errs)+len(d.warns)+d.dropped == before)
	}
}

// resolveService makes services[i] effective. Flags of the defaults that do not fit the
// service's own scheduler are dropped for that service, with a warning at the service.
func (d *decoder) resolveService(c *schema.ClusterConfig, i int) {
	def := &c.Defaults.IPVS
	s := &c.Services[i]
	p := func() string { return index("services", i) + ".ipvs" }
	if s.Protocols == nil {
		s.Protocols = slices.Clone(c.Defaults.Protocols)
	}
	own := schema.IPVSOptions{}
	if s.IPVS != nil {
		own = *s.IPVS
		d.normalizeIPVS(p, &own, def.Scheduler)
	} else {
		s.IPVS = new(schema.IPVSOptions)
	}
	eff := *def
	if own.Scheduler != "" {
		eff.Scheduler = own.Scheduler
	}
	if own.Forwarding != "" {
		eff.Forwarding = own.Forwarding
	}
	switch {
	case own.Flags != nil:
		eff.Flags = own.Flags
	case eff.Scheduler != def.Scheduler:
		eff.Flags = []string{}
		for _, f := range def.Flags {
			if schema.SchedulerFlags[f] == eff.Scheduler {
				eff.Flags = append(eff.Flags, f)
			} else {
				d.warnAt(p()+".scheduler", "inherited flag %q does not belong to scheduler %s: dropped for this service", f, eff.Scheduler)
			}
		}
	default:
		eff.Flags = slices.Clone(def.Flags)
	}
	if own.UpperThreshold != nil {
		eff.UpperThreshold = own.UpperThreshold
	}
	if own.LowerThreshold != nil {
		eff.LowerThreshold = own.LowerThreshold
	}
	if own.UpperThreshold != nil || own.LowerThreshold != nil {
		d.checkThresholds(p(), eff.UpperThreshold, eff.LowerThreshold, own.UpperThreshold != nil, own.LowerThreshold != nil)
	}
	*s.IPVS = eff
	if s.Kubernetes != nil && eff.Forwarding == schema.ForwardNAT {
		d.refuseNATForKubernetes(i, own.Forwarding != "")
	}
	for j := range s.Backends {
		b := &s.Backends[j]
		if b.Port == 0 {
			b.Port = s.Port
		}
		if b.Weight == nil {
			b.Weight = new(int)
			*b.Weight = 1
		}
	}
	d.checkBackendPorts(s, i, eff.Forwarding, own.Forwarding != "")
	d.resolveHealthCheck(c, i)
}

// refuseNATForKubernetes reports services[i], a kubernetes target with forwarding nat, at its
// own forwarding key, or at the service when it inherits nat from defaults.ipvs. Its
// destinations are node:port; the realservers' DNAT rules match only the VIP, and a pod would
// answer the client from its own address, around the director, which the client drops.
func (d *decoder) refuseNATForKubernetes(i int, own bool) {
	const why = "cannot serve a kubernetes target: destinations are node:port, the realservers' DNAT rules match only the VIP, and pods would answer clients directly, around the director; use dr or tunnel"
	if own {
		d.errAt(index("services", i)+".ipvs.forwarding", "%s %s", forwardingFrom(schema.ForwardNAT, true), why)
		return
	}
	d.errAt(index("services", i), "%s %s", forwardingFrom(schema.ForwardNAT, false), why)
}
