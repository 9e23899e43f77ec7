package daemon

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/netops"
)

// TestDirectorRetryBacksOff: an op the kernel keeps refusing is retried on the 1 s tick at
// 1, 2, 4, 8, 16, 30, 30 s intervals (not every second), logged once, counted in
// ravel_apply_retries_total; a success resets the schedule.
func TestDirectorRetryBacksOff(t *testing.T) {
	f := newFakes()
	d, clock, m := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
	var logs syncBuffer
	d.log = slog.New(slog.NewTextHandler(&logs, nil))
	const refusedSyncs, servicesPerSync = 8, 3 // the initial sync and 7 retries
	for range refusedSyncs * servicesPerSync {
		f.ipvs.FailNext("AddService", netops.ErrInvalid)
	}
	start := clock.now()
	d.FullSync() // refused: 1
	var retries []time.Duration
	last := start
	for range 200 { // the drain ticker's one-second ticks
		clock.advance(time.Second)
		if d.retryDue() {
			retries = append(retries, clock.now().Sub(last))
			last = clock.now()
			d.FullSync()
		}
	}
	s := time.Second
	want := []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s, 30 * s} // the 8th succeeds
	if diff := cmp.Diff(want, retries); diff != "" {
		t.Errorf("retry intervals (-want +got):\n%s", diff)
	}
	if got := value(t, m.ApplyRetries); got != float64(len(want)) {
		t.Errorf("ravel_apply_retries_total = %v, want %d", got, len(want))
	}
	if n := strings.Count(logs.String(), "apply failed"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once:\n%s", n, logs.String())
	}

	// Success reset the schedule: a new refusal is retried after 1 s again.
	svcs, err := f.ipvs.Services()
	must(t, err)
	for _, sv := range svcs {
		must(t, f.ipvs.DelService(sv.ServiceKey))
	}
	for range servicesPerSync {
		f.ipvs.FailNext("AddService", netops.ErrInvalid)
	}
	d.FullSync()
	clock.advance(time.Second)
	if !d.retryDue() {
		t.Error("after a success, a new failure is not retried after 1s")
	}
}
