package daemon

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/ravel-lb/ravel/reconcile"
)

// VIPAnnouncer announces a whole set of VIPs (the BGP speaker): what is not in the set is
// withdrawn.
type VIPAnnouncer interface {
	Set(vips map[netip.Addr]bool) error
}

// SetBGP makes the director announce its serving VIPs through a (node.role bgp) after every
// apply. Call before Run.
func (d *Director) SetBGP(a VIPAnnouncer) {
	d.bgp = a
	d.bgpDrain = make(chan bool)
}

// DrainBGP withdraws every route (drained true) until it is called with false: an operator's
// drain before maintenance. The kernel keeps forwarding what still arrives.
func (d *Director) DrainBGP(drained bool) {
	if d.bgpDrain != nil {
		d.bgpDrain <- drained
	}
}

// announceBGP hands the speaker the VIPs that serve now (reconcile.ServingVIPs), or none while
// drained. A failure is logged once per change of its error.
func (d *Director) announceBGP() {
	if d.bgp == nil || d.desired == nil {
		return
	}
	vips := map[netip.Addr]bool{}
	var withheld []WithheldVIP
	if !d.bgpDrained {
		vips = reconcile.ServingVIPs(d.desired)
		why := reconcile.WithheldVIPs(d.desired)
		for _, v := range slices.SortedFunc(maps.Keys(why), netip.Addr.Compare) {
			withheld = append(withheld, WithheldVIP{VIP: v, Reason: why[v]})
		}
	}
	err := d.bgp.Set(vips)
	d.m.BGPAnnounced.Set(float64(len(vips)))
	switch {
	case err != nil && d.failure["bgp"] != err.Error():
		d.failure["bgp"] = err.Error()
		d.log.Error("BGP announcements failed", "err", err)
	case err == nil:
		delete(d.failure, "bgp")
	}
	if d.status != nil {
		d.status.SetAnnounced(slices.SortedFunc(maps.Keys(vips), netip.Addr.Compare), withheld, d.bgpDrained)
	}
}
