package config

import (
	"slices"

	"github.com/ravel-lb/ravel/schema"
)

// The seed's rule: an invalid IPVS option value is never refused, because ravel must always
// configure a load balancer. Each value is normalized once, where it is written, and reported as
// a warning with its position; services that inherit it get the normalized value silently.

// normalizeIPVS fixes o in place. p is where o is written (built only for a warning);
// inherited is the scheduler o's flags belong to when o does not set its own.
func (d *decoder) normalizeIPVS(p func() string, o *schema.IPVSOptions, inherited string) {
	if o.Scheduler != "" && !slices.Contains(schema.Schedulers, o.Scheduler) {
		d.warnAt(p()+".scheduler", "unknown scheduler %q, using wrr", o.Scheduler)
		o.Scheduler = "wrr"
	}
	if o.Forwarding != "" && !slices.Contains(schema.Forwardings, o.Forwarding) {
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
	for i, f := range o.Flags {
		owner, known := schema.SchedulerFlags[f]
		switch {
		case !known:
			d.warnAt(index(p()+".flags", i), "unknown flag %q dropped", f)
		case owner != sched:
			d.warnAt(index(p()+".flags", i), "flag %q belongs to scheduler %s, not %s: dropped", f, owner, sched)
		case slices.Contains(kept, f):
			d.warnAt(index(p()+".flags", i), "flag %q is listed twice: dropped", f)
		default:
			kept = append(kept, f)
		}
	}
	if len(kept) == len(o.Flags) {
		return // nothing dropped: keep the decoded list
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
		d.resolveService(c, i)
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
}
