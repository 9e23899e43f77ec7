package kube

import "time"

// debouncer coalesces events: after a burst, publish once no event arrived for quiet, and at
// the latest maxDelay after the first unpublished event (kubernetes.debounce). With both zero
// every event is due at once. It holds times only; the loop owns it and the clock.
type debouncer struct {
	quiet, maxDelay time.Duration

	pending     bool
	first, last time.Time
}

// event records an event at now.
func (d *debouncer) event(now time.Time) {
	if !d.pending {
		d.pending, d.first = true, now
	}
	d.last = now
}

// due returns when the pending events should be published; ok is false if none is pending.
func (d *debouncer) due() (at time.Time, ok bool) {
	if !d.pending {
		return time.Time{}, false
	}
	at = d.last.Add(d.quiet)
	if limit := d.first.Add(d.maxDelay); limit.Before(at) {
		at = limit
	}
	return at, true
}

// done forgets the pending events (they were published).
func (d *debouncer) done() { d.pending = false }
