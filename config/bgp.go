package config

import (
	"strconv"
	"strings"
	"time"

	"github.com/ravel-lb/ravel/family"
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
	// Each VIP is announced to the peers of its family (IPv6 VIPs as /128 on IPv6 sessions):
	// a family of the pool without a peer would be bound and never announced.
	if c.Node.Role == schema.RoleBGP {
		peers := map[family.Family]bool{}
		for _, p := range b.Peers {
			peers[family.Of(p.Address)] = true
		}
		for i, v := range c.VIPPool {
			if f := family.Of(v); !peers[f] && len(b.Peers) > 0 {
				d.errAt(index("vipPool", i), "%s is %s, and bgp.peers has no %s peer to announce it to (each VIP goes to the peers of its family)", v, f, f)
			}
		}
	}
	first := map[string]int{}
	for i := range b.Peers {
		p := &b.Peers[i]
		at := func(k string) string { return index("bgp.peers", i) + k }
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
