package reconcile

import (
	"errors"
	"time"
)

// Drains is the bookkeeping of the destinations ravel drains: a destination that leaves the
// desired state is set to weight 0 (OpDrainDest) and deleted once it has no connections left
// or the drain timeout has passed, whichever is first. Drains remembers since when each one
// drains; Diff asks it whether a draining destination may go (MayDelete), and the caller
// tells it what a plan did once the kernel has answered (Applied) and what the kernel holds
// now (Forget).
//
// The zero value is empty and ready to use; a nil *Drains knows of no drain (what Diff sees
// without a caller that keeps drains, e.g. `ravel plan`). Drains never reads the clock: every
// time is passed in. It is not safe for concurrent use.
type Drains struct {
	since map[DestRef]time.Time // when ravel started draining each destination
}

// Start records that ref started draining at t.
func (d *Drains) Start(ref DestRef, t time.Time) {
	if d.since == nil {
		d.since = map[DestRef]time.Time{}
	}
	d.since[ref] = t
}

// Pending is the number of destinations draining.
func (d *Drains) Pending() int {
	if d == nil {
		return 0
	}
	return len(d.since)
}

// started says when ref started draining, if it is known to drain.
func (d *Drains) started(ref DestRef) (time.Time, bool) {
	if d == nil {
		return time.Time{}, false
	}
	t, ok := d.since[ref]
	return t, ok
}

// MayDelete reports whether ref, a destination at weight 0 in actual that is not desired,
// may be deleted at now, and why: it has no connections left (actual.Stats), or timeout has
// passed since its drain started. A drain not known yet (one found in the kernel, e.g. after
// a restart) counts as starting at now.
func (d *Drains) MayDelete(ref DestRef, actual *State, now time.Time, timeout time.Duration) (reason string, ok bool) {
	start, known := d.started(ref)
	if !known {
		start = now
	}
	st, hasStats := actual.Stats[ref]
	switch {
	case hasStats && st.ActiveConns == 0 && st.InactiveConns == 0:
		return "drained, no connections left", true
	case now.Sub(start) >= timeout:
		return "drain timeout", true
	}
	return "", false
}

// Applied updates the drains after p was applied at now; err is what Apply returned. The
// drains p found already under way (p.DrainsStarted) start at now whatever err says: the
// kernel holds them at weight 0 already. Of p's ops only those the kernel accepted count: a
// drain-destination op starts a drain, a delete-destination op ends it, and a
// delete-service op ends every drain of the service. A refused drain is not recorded (the
// destination keeps its weight, and the next plan drains it again); a refused delete keeps
// its drain and its start (the next plan deletes it again). An err that is not Apply's
// *ApplyError counts every op as refused.
func (d *Drains) Applied(p *Plan, err error, now time.Time) {
	for _, ref := range p.DrainsStarted {
		d.Start(ref, now)
	}
	var refused map[int]bool // by index in p.Ops
	if err != nil {
		var ae *ApplyError
		if !errors.As(err, &ae) {
			return
		}
		refused = make(map[int]bool, len(ae.Refused))
		for _, r := range ae.Refused {
			refused[r.Index] = true
		}
	}
	for i, op := range p.Ops {
		if refused[i] {
			continue
		}
		switch op.Kind {
		case OpDrainDest:
			d.Start(DestRef{Service: op.Service.ServiceKey, Dest: op.Dest.DestKey}, now)
		case OpDelDest:
			delete(d.since, DestRef{Service: op.Service.ServiceKey, Dest: op.Dest.DestKey})
		case OpDelService:
			for ref := range d.since {
				if ref.Service == op.Service.ServiceKey {
					delete(d.since, ref)
				}
			}
		}
	}
}

// Forget drops the drains that are over, given the desired state and a full read of the
// actual one: the destination, or its whole service, is no longer in the kernel (deleted,
// by ravel or by hand), or it is desired again (it came back; the plan restores its weight).
func (d *Drains) Forget(desired, actual *State) {
	for ref := range d.since {
		vs := actual.Services[ref.Service]
		if vs == nil {
			delete(d.since, ref)
			continue
		}
		if _, still := vs.Dests[ref.Dest]; !still {
			delete(d.since, ref)
			continue
		}
		if dv := desired.Services[ref.Service]; dv != nil {
			if _, back := dv.Dests[ref.Dest]; back {
				delete(d.since, ref)
			}
		}
	}
}
