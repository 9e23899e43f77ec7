package reconcile

import "net/netip"

// ServingVIPs is the set of VIPs a director may announce as its own (BGP): those with at
// least one service that has a destination with a weight above 0 passing its health check.
// A VIP counts once however many services it has. A service under the all-failing hold
// forwards but does not count (another director that can reach its realservers should take
// the traffic); one whose new Kubernetes target is not known yet (Keep) counts, since it
// forwards as before.
func ServingVIPs(st *State) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, vs := range st.Services {
		if out[vs.VIP] || vs.Held {
			continue
		}
		if vs.Keep {
			out[vs.VIP] = true
			continue
		}
		for _, d := range vs.Dests {
			if d.Weight > 0 {
				out[vs.VIP] = true
				break
			}
		}
	}
	return out
}

// WithheldVIPs says, for every VIP of st's services that ServingVIPs leaves out, why.
func WithheldVIPs(st *State) map[netip.Addr]string {
	serving := ServingVIPs(st)
	held := map[netip.Addr]bool{}
	out := map[netip.Addr]string{}
	for _, vs := range st.Services {
		if serving[vs.VIP] {
			continue
		}
		if vs.Held {
			held[vs.VIP] = true
		}
		out[vs.VIP] = "no destination with weight above 0"
	}
	for v := range held {
		out[v] = "every realserver fails its health check (held: forwarding, not announced)"
	}
	return out
}
