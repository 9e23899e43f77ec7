package config

import (
	"net/netip"
	"strings"
	"time"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/schema"
)

// checkHealth checks the health section: a check's timeout must end before the next check is
// due, or checks of one node would pile up.
func (d *decoder) checkHealth(h *schema.Health) {
	d.checkCheckTiming("health", h.Interval.D(), h.Timeout.D(), true, true)
	if h.DrainDelay < 0 {
		d.errAt("health.drainDelay", "must not be negative")
	}
}

// checkCheckTiming reports an interval that is not positive and a timeout not below the
// interval, on the effective values; ownInterval and ownTimeout say which the path sets itself
// (a finding about an inherited value says where it comes from).
func (d *decoder) checkCheckTiming(p string, interval, timeout time.Duration, ownInterval, ownTimeout bool) {
	switch {
	case interval <= 0:
		if ownInterval {
			d.errAt(p+".interval", "must be positive")
		}
	case timeout <= 0:
		if ownTimeout {
			d.errAt(p+".timeout", "must be positive")
		}
	case timeout >= interval:
		from := ""
		if !ownInterval {
			from = " (interval inherited from defaults.healthCheck)"
		}
		if !ownTimeout {
			from = " (timeout inherited from defaults.healthCheck)"
		}
		at := p + ".timeout"
		if !ownTimeout {
			at = p + ".interval"
		}
		d.errAt(at, "timeout %s must be shorter than interval %s%s", timeout, interval, from)
	}
}

// checkHealthCheck checks one healthCheck block at p: in defaults every key is
// effective; in a service an unset key inherits, so only what the file wrote is checked
// against its own rules, and the combination is checked once resolved.
func (d *decoder) checkHealthCheck(p string, hc *schema.HealthCheck, inService bool) {
	// In defaults, 0 is the documented value (the backend's port); a service that writes 0
	// most likely meant a port and forgot it.
	if hc.Port == 0 && inService && d.written(p+".port") {
		d.errAt(p+".port", "must be a port in 1..65535 (leave it out to check the backend's port)")
	}
	if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
		d.errAt(p+".path", "%s must start with '/'", quote(hc.Path))
	} else if hc.Path == "" && d.written(p+".path") {
		d.errAt(p+".path", "must not be empty (leave it out for /)")
	}
	for _, k := range []struct {
		key string
		v   int
	}{{"rise", hc.Rise}, {"fall", hc.Fall}} {
		if k.v == 0 && d.written(p+"."+k.key) {
			d.errAt(p+"."+k.key, "must be at least 1")
		}
	}
	for _, k := range []struct {
		key string
		v   schema.Duration
	}{{"interval", hc.Interval}, {"timeout", hc.Timeout}} {
		if k.v < 0 || k.v == 0 && d.written(p+"."+k.key) {
			d.errAt(p+"."+k.key, "must be positive")
		}
	}
	if strings.ContainsAny(hc.Host, " \t\r\n/") {
		d.errAt(p+".host", "%s is not a host name", quote(hc.Host))
	}
}

// resolveHealthCheck makes services[i].healthCheck effective: every key it leaves unset takes
// the value of defaults.healthCheck. A service without backends keeps none.
func (d *decoder) resolveHealthCheck(c *schema.ClusterConfig, i int) {
	s := &c.Services[i]
	p := index("services", i)
	if s.Kubernetes != nil {
		if s.HealthCheck != nil {
			d.errAt(p+".healthCheck", "applies to static backends only: a kubernetes target is checked through the realservers' health endpoints (health.checkRealservers)")
		}
		if s.SorryServer != nil {
			d.errAt(p+".sorryServer", "applies to static backends only")
		}
		return
	}
	def := c.Defaults.HealthCheck
	own := schema.HealthCheck{}
	if s.HealthCheck != nil {
		own = *s.HealthCheck
		d.checkHealthCheck(p+".healthCheck", &own, true)
	}
	eff := def
	if own.Type != "" {
		eff.Type = own.Type
	}
	if own.Port != 0 {
		eff.Port = own.Port
	}
	if own.Path != "" {
		eff.Path = own.Path
	}
	if own.ExpectStatus != 0 {
		eff.ExpectStatus = own.ExpectStatus
	}
	if own.Host != "" {
		eff.Host = own.Host
	}
	if own.Interval > 0 {
		eff.Interval = own.Interval
	}
	if own.Timeout > 0 {
		eff.Timeout = own.Timeout
	}
	if own.Rise > 0 {
		eff.Rise = own.Rise
	}
	if own.Fall > 0 {
		eff.Fall = own.Fall
	}
	if s.HealthCheck != nil && eff.Type != schema.CheckNone && (own.Interval > 0 || own.Timeout > 0) {
		d.checkCheckTiming(p+".healthCheck", eff.Interval.D(), eff.Timeout.D(), own.Interval > 0, own.Timeout > 0)
	}
	s.HealthCheck = &eff
	if ss := s.SorryServer; ss != nil {
		sp := p + ".sorryServer"
		if !ss.Address.IsValid() {
			if !d.written(sp + ".address") {
				d.errAt(sp+".address", "is required")
			}
			return
		}
		d.checkBackendAddr(sp+".address", ss.Address)
		if s.VIP.IsValid() && family.Of(ss.Address) != family.Of(s.VIP) {
			d.errAt(sp+".address", "%s", otherFamily(ss.Address, s.VIP))
		}
		if ss.Port == 0 {
			ss.Port = s.Port
		}
		if ss.Port != s.Port && s.IPVS.Forwarding != schema.ForwardNAT {
			d.errAt(sp+".port", "port %d differs from the service port %d, and forwarding %s cannot rewrite ports (only nat can)", ss.Port, s.Port, s.IPVS.Forwarding)
		}
		for j := range s.Backends {
			if backendAddr(s, j) == netip.AddrPortFrom(ss.Address, uint16(ss.Port)) {
				d.errAt(sp, "%s is also backends[%d]: a sorry server stands in for the backends, it cannot be one", netip.AddrPortFrom(ss.Address, uint16(ss.Port)), j)
			}
		}
		if eff.Type == schema.CheckNone {
			d.warnAt(sp, "no health check (healthCheck.type none): the sorry server is never used")
		}
	}
}

// checkManagement checks the management service: it needs tcp to be answered by the health
// endpoints or the director, a kubernetes section for a kubernetes target, and forwarding
// that delivers the VIP unchanged to the realservers.
func (d *decoder) checkManagement(c *schema.ClusterConfig, seen *seenServices) {
	m := &c.Management
	if m.Port <= 0 || m.Port > 65535 {
		return
	}
	switch {
	case m.Kubernetes != nil && c.Kubernetes == nil:
		d.errAt("management.kubernetes", "targets a Kubernetes service, but the file has no top-level kubernetes section")
	case m.Kubernetes == nil && m.Protocol != "tcp":
		d.errAt("management.protocol", "protocol %s needs management.kubernetes: without it the port is answered over HTTP (tcp)", m.Protocol)
	}
	if (m.Kubernetes != nil || c.Kubernetes != nil) && c.Defaults.IPVS.Forwarding == schema.ForwardNAT {
		d.errAt("management.port", "the management service's destinations are nodes, and forwarding nat (from defaults.ipvs.forwarding) cannot serve them; use dr or tunnel")
	}
	for _, vip := range c.VIPPool {
		if j, dup := seen.vip[vkey{vip, m.Port, m.Protocol}]; dup {
			d.errAt(index("services", j), "%s %s is the management service's (management.port on every vipPool address)", m.Protocol, netip.AddrPortFrom(vip, uint16(m.Port)))
		}
	}
}
