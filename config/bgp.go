package config

import (
	"strconv"
	"strings"
	"time"

	"github.com/ravel-lb/ravel/schema"
)

// checkBGP checks the bgp section (the rules of each key that the field rules cannot say).
func (d *decoder) checkBGP(c *schema.ClusterConfig) {
	b := c.BGP
	if b == nil {
		return
	}
	if b.ListenPort == 0 && d.written("bgp.listenPort") {
		d.errAt("bgp.listenPort", "0 is not a port: -1 accepts no session, 1..65535 listens there")
	}
	for i, cm := range b.Communities {
		if !communityOK(cm, 2, 0xffff) {
			d.errAt(index("bgp.communities", i), "%s is not a community ASN:VALUE (each 0..65535)", quote(cm))
		}
	}
	for i, cm := range b.LargeCommunities {
		if !communityOK(cm, 3, 0xffffffff) {
			d.errAt(index("bgp.largeCommunities", i), "%s is not a large community GLOBAL:LOCAL1:LOCAL2 (each 0..4294967295)", quote(cm))
		}
	}
	// A BGP identifier is 32 bits whatever the session's family (RFC 6286).
	if b.RouterID != nil && b.RouterID.IsValid() && !b.RouterID.Is4() {
		d.errAt("bgp.routerId", "%s is IPv6, and a BGP identifier is 32 bits: write an IPv4 address, or leave it out for node.interface's", b.RouterID)
	}
	if b.NextHop != nil && b.NextHop.IsValid() && !b.NextHop.Is4() {
		d.errAt("bgp.nextHop", "%s is IPv6: ravel announces IPv4 routes only for now", b.NextHop)
	}
	if c.Node.Role == schema.RoleBGP {
		for i, v := range c.VIPPool {
			if v.Is6() {
				d.errAt(index("vipPool", i), "%s is IPv6: role bgp announces IPv4 VIPs only for now (use role director, which announces IPv6 VIPs by neighbour advertisement)", v)
			}
		}
	}
	first := map[string]int{}
	for i := range b.Peers {
		p := &b.Peers[i]
		at := func(k string) string { return index("bgp.peers", i) + k }
		if p.Address.IsValid() && !p.Address.Is4() {
			d.errAt(at(".address"), "%s is IPv6: ravel's BGP sessions are IPv4 only for now", p.Address)
		}
		if p.Address.IsValid() {
			port := p.Port
			if port == 0 {
				port = 179
			}
			key := p.Address.String() + ":" + strconv.Itoa(port)
			if j, dup := first[key]; dup {
				d.errAt(at(".address"), "peer %s is already bgp.peers[%d]", p.Address, j)
			} else {
				first[key] = i
			}
		} else if !d.written(at(".address")) {
			d.errAt(at(".address"), "is required")
		}
		if p.ASN == 0 && !d.written(at(".asn")) {
			d.errAt(at(".asn"), "is required")
		}
		if len(p.Password) > 80 {
			d.errAt(at(".password"), "is %d characters; TCP MD5 keys are at most 80", len(p.Password))
		}
		hold, ka := p.HoldTime.D(), p.KeepaliveTime.D()
		switch {
		case hold < 0 || hold > 0 && hold < 3*time.Second || hold > 65535*time.Second:
			d.errAt(at(".holdTime"), "must be 0 (no keepalives) or 3s..65535s, not %s", hold)
		case hold > 0 && (ka <= 0 || ka >= hold):
			d.errAt(at(".keepaliveTime"), "keepaliveTime %s must be above 0 and below holdTime %s", ka, hold)
		}
		if p.ConnectRetry <= 0 {
			d.errAt(at(".connectRetry"), "must be positive")
		}
		if p.BFD.Enabled && p.BFD.MinInterval <= 0 {
			d.errAt(at(".bfd.minInterval"), "must be positive")
		}
		if rt := p.GracefulRestart.RestartTime.D(); p.GracefulRestart.Enabled && (rt < time.Second || rt > 4095*time.Second) {
			d.errAt(at(".gracefulRestart.restartTime"), "must be 1s..4095s (12 bits of seconds in the capability), not %s", rt)
		}
	}
}

// communityOK reports whether s is n decimal numbers up to limit, joined by ':'.
func communityOK(s string, n int, limit uint64) bool {
	parts := strings.Split(s, ":")
	if len(parts) != n {
		return false
	}
	for _, p := range parts {
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil || v > limit {
			return false
		}
	}
	return true
}
