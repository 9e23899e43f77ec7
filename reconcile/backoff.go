package reconcile

import "time"

// Backoff is the retry schedule after failures: the first retry waits Min, each further
// failure doubles the wait up to Max, and a success resets it. Time is passed in.
type Backoff struct {
	Min, Max time.Duration

	delay time.Duration // the wait after the last failure; 0 after a success
	next  time.Time     // when a retry is due
}

// Failed records a failed attempt at now.
func (b *Backoff) Failed(now time.Time) {
	b.delay = min(max(2*b.delay, b.Min), b.Max)
	b.next = now.Add(b.delay)
}

// Succeeded resets the schedule.
func (b *Backoff) Succeeded() { b.delay, b.next = 0, time.Time{} }

// Due reports whether a retry may run at now.
func (b *Backoff) Due(now time.Time) bool { return !now.Before(b.next) }

// Delay is the wait after the last failure (0 after a success).
func (b *Backoff) Delay() time.Duration { return b.delay }
