package kube

import (
	"testing"
	"time"
)

func TestDebouncer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name            string
		quiet, maxDelay time.Duration
		events          []int // ms after t0
		want            int   // due, ms after t0
	}{
		{name: "zero publishes at once", events: []int{0, 5}, want: 0},
		{name: "quiet after the last event", quiet: 100 * time.Millisecond, maxDelay: time.Second,
			events: []int{0, 50, 120}, want: 220},
		{name: "max delay caps a steady stream", quiet: 100 * time.Millisecond, maxDelay: time.Second,
			events: []int{0, 90, 180, 270, 360, 450, 540, 630, 720, 810, 900, 990}, want: 1000},
		{name: "max delay below quiet wins", quiet: time.Second, maxDelay: 200 * time.Millisecond,
			events: []int{10}, want: 210},
		{name: "quiet only with zero max delay is capped at once", quiet: time.Second,
			events: []int{10}, want: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := debouncer{quiet: tt.quiet, maxDelay: tt.maxDelay}
			if _, ok := d.due(); ok {
				t.Fatal("due with no event")
			}
			for _, e := range tt.events {
				d.event(ms(e))
			}
			at, ok := d.due()
			if !ok || !at.Equal(ms(tt.want)) {
				t.Errorf("due = %v, %v; want +%dms", at.Sub(t0), ok, tt.want)
			}
			d.done()
			if _, ok := d.due(); ok {
				t.Error("due after done")
			}
			// A new burst starts a new max-delay window.
			d.event(ms(5000))
			if at, _ := d.due(); at.Before(ms(5000)) {
				t.Errorf("new burst due at %v", at.Sub(t0))
			}
		})
	}
}
