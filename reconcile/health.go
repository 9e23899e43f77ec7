package reconcile

import (
	"net/netip"
	"time"

	"github.com/ravel-lb/ravel/netops"
)

// Machine is the rise/fall state of one health-checked thing (a static backend, a realserver
// node, or a node's service): Fall failures in a row take it down, Rise passes in a row bring
// it back. It starts up, as keepalived's checkers do, so that a director restart or a reload
// never drains a healthy destination while its first checks run. The zero value is up.
//
// Machine never reads the clock: every time is passed in. It is not safe for concurrent use.
type Machine struct {
	down   bool
	streak int       // results in a row against the current state
	since  time.Time // when the current state began (zero: up since the start)
	reason string    // why it is down (the failure that took it down)
}

// Observe records one result at now and reports whether the state changed. rise and fall
// below 1 count as 1.
func (m *Machine) Observe(ok bool, reason string, rise, fall int, now time.Time) bool {
	if ok != m.down { // the result agrees with the state: up and ok, or down and failing
		m.streak = 0
		if m.down {
			m.reason = reason
		}
		return false
	}
	m.streak++
	need := max(fall, 1)
	if m.down {
		need = max(rise, 1)
	}
	if m.streak < need {
		return false
	}
	m.down, m.streak, m.since = !m.down, 0, now
	m.reason = ""
	if m.down {
		m.reason = reason
	}
	return true
}

// Up reports whether the machine is up.
func (m *Machine) Up() bool { return !m.down }

// Since is when the current state began; zero for a machine up since it was made.
func (m *Machine) Since() time.Time { return m.since }

// Reason is why the machine is down ("" when up): the last failure seen.
func (m *Machine) Reason() string { return m.reason }

// Failing reports a failure pending: up, but the last result failed (fewer than fall in a row).
func (m *Machine) Failing() bool { return !m.down && m.streak > 0 }

// Settled reports whether the machine is up with no failure pending: a table of machines need
// not keep it (a new zero Machine is the same).
func (m *Machine) Settled() bool { return !m.down && m.streak == 0 }

// Check is what the health checks say about one destination.
type Check struct {
	// Checked is false for a destination nothing checks: it passes.
	Checked bool
	Up      bool
	// Failing is an up destination whose last check failed: not down yet (fall not reached).
	Failing bool
	// DownSince is when it went down (Up false).
	DownSince time.Time
	// Hold is how long detecting a failure takes (fall × interval + timeout): destinations that
	// went down within Hold of the service's last healthy one fell together, most likely
	// because the checks themselves failed (see holdSet).
	Hold time.Duration
}

// Health is the director's view of its checks, as Desired reads it. nil means nothing is
// checked.
type Health interface {
	// Check says whether destination d of the service on vip:port passes. Both protocols of a
	// service share one check. kube says the destination is a Kubernetes node.
	Check(vip netip.Addr, port uint16, d netops.DestKey, kube bool) Check
}

// gateHealth gives weight 0 to the destinations of a service that fail their checks, so they
// drain instead of being cut (keepalived's inhibit_on_failure). Weights of the others stay
// what the config or the pod counts say: health only gates them.
//
// When every destination with a weight fails at once, the checks are more likely wrong than
// every backend (a director cut off from its health network sees exactly that), and emptying
// the service would drop all of its traffic. Unless the service has a sorry server to fall
// back to, the destinations that fell together with the last healthy one keep their weights:
// the hold. "Every destination fails" counts an up destination whose last check failed too:
// checks are spread over the interval, so when a cut-off director's first destination reaches
// fall failures the others have each failed once already; waiting for all of them to be down
// would drain them one by one first. It returns whether the hold applies and whether every
// weighted destination is down (for the sorry server).
func gateHealth(h Health, vip netip.Addr, port uint16, dests []wdest, kube, sorry bool) (held, allDown bool) {
	if h == nil {
		return false, false
	}
	var checks []Check // of the weighted destinations, in order; allocated only on a failure
	weighted, down, failing := 0, 0, 0
	for i, d := range dests {
		if d.weight == 0 {
			continue
		}
		weighted++
		c := h.Check(vip, port, d.key, kube)
		if c.Failing {
			failing++
		}
		if !c.Checked || c.Up {
			if checks != nil {
				checks[i] = c
			}
			continue
		}
		if checks == nil {
			checks = make([]Check, len(dests))
			for j := range i {
				if dests[j].weight > 0 {
					checks[j] = h.Check(vip, port, dests[j].key, kube)
				}
			}
		}
		checks[i] = c
		down++
	}
	if down == 0 {
		return false, false
	}
	if down+failing == weighted && !sorry {
		keep := holdSet(dests, checks)
		for i := range dests {
			if dests[i].weight > 0 && checks[i].Checked && !checks[i].Up && !keep[i] {
				dests[i].weight = 0
			}
		}
		return true, down == weighted
	}
	for i := range dests {
		if dests[i].weight > 0 && checks[i].Checked && !checks[i].Up {
			dests[i].weight = 0
		}
	}
	return false, down == weighted
}

// holdSet picks, when every weighted destination is down, those that keep their weights: the
// ones that went down within Hold of the last to go (t). They are the last healthy set, and
// the set does not change while all stay down, so the hold never moves traffic around.
func holdSet(dests []wdest, checks []Check) []bool {
	var last time.Time
	for i := range dests {
		if dests[i].weight > 0 && !checks[i].Up && checks[i].DownSince.After(last) {
			last = checks[i].DownSince
		}
	}
	keep := make([]bool, len(dests))
	for i := range dests {
		if dests[i].weight > 0 && !checks[i].Up && !checks[i].DownSince.Before(last.Add(-checks[i].Hold)) {
			keep[i] = true
		}
	}
	return keep
}
