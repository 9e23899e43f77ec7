package reconcile

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestBackoff: after each failure the next try waits twice as long, from Min up to Max; a
// success makes the next failure wait Min again.
func TestBackoff(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := time.Second
	for _, c := range []struct {
		name     string
		failures int
		want     []time.Duration // the delay after each failure
	}{
		{"one", 1, []time.Duration{s}},
		{"doubles to the cap", 8, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s, 30 * s}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := Backoff{Min: s, Max: 30 * s}
			if !b.Due(t0) {
				t.Fatal("a fresh backoff is not due")
			}
			now := t0
			var got []time.Duration
			for range c.failures {
				b.Failed(now)
				got = append(got, b.Delay())
				if b.Due(now.Add(b.Delay() - time.Nanosecond)) {
					t.Fatalf("due before its delay %s", b.Delay())
				}
				now = now.Add(b.Delay())
				if !b.Due(now) {
					t.Fatalf("not due after its delay %s", b.Delay())
				}
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
			b.Succeeded()
			if !b.Due(now) || b.Delay() != 0 {
				t.Errorf("after a success: due %t, delay %s; want due, 0", b.Due(now), b.Delay())
			}
			b.Failed(now)
			if b.Delay() != s {
				t.Errorf("first failure after a success waits %s, want %s", b.Delay(), s)
			}
		})
	}
}
