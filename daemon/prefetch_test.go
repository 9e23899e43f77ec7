package daemon

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestFirstSyncTakesTheStartupRead: a director given a Prefetch makes no IPVS read of its
// own in its first full sync, repairs from that read what differs (a weight changed by hand
// before it), leaves the foreign service it also holds alone, and reads the kernel itself
// from the second sync on.
func TestFirstSyncTakesTheStartupRead(t *testing.T) {
	f := newFakes()
	seedForeign(t, f)
	first, _, _ := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
	first.FullSync()
	want := f.ipvs.Dump()
	drift(t, f)

	p := StartPrefetch(f.ipvs)
	if r, why := p.take(time.Now()); r == nil {
		t.Fatalf("the start-up read is not taken: %s", why)
	}
	f.resetCalls()
	d, _, _ := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
	d.SetPrefetch(p)
	d.FullSync()
	if n := f.ipvs.Calls("Services") + f.ipvs.Calls("ListedDestinations"); n != 0 {
		t.Errorf("the first sync read IPVS itself (%d calls) instead of taking the start-up read", n)
	}
	if diff := cmp.Diff(want, f.ipvs.Dump()); diff != "" {
		t.Errorf("IPVS after the first sync (-want +got):\n%s", diff)
	}
	for _, l := range f.ipvs.Log() {
		if contains(l, "10.99.") {
			t.Errorf("foreign IPVS service touched: %s", l)
		}
	}
	f.resetCalls()
	d.FullSync()
	if f.ipvs.Calls("ListedDestinations") == 0 {
		t.Error("the second sync did not read IPVS")
	}
}

// TestFirstSyncReadsAgain: a start-up read that is too old, or that failed, is not taken.
func TestFirstSyncReadsAgain(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(*fakes)
		age   time.Duration
	}{
		{"old", func(*fakes) {}, prefetchMaxAge + time.Second},
		{"failed", func(f *fakes) { f.ipvs.FailNext("Services", errors.New("netlink: no buffer space")) }, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes()
			first, _, _ := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
			first.FullSync()
			want := f.ipvs.Dump()
			drift(t, f)
			tt.setup(f)
			p := StartPrefetch(f.ipvs)
			<-p.done
			p.at = p.at.Add(-tt.age)
			f.resetCalls()
			d, _, _ := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
			d.SetPrefetch(p)
			d.FullSync()
			if f.ipvs.Calls("ListedDestinations") == 0 {
				t.Error("the first sync took a start-up read it should not have")
			}
			if diff := cmp.Diff(want, f.ipvs.Dump()); diff != "" {
				t.Errorf("IPVS after the first sync (-want +got):\n%s", diff)
			}
		})
	}
}

// drift changes the weight of one of ravel's destinations behind its back.
func drift(t *testing.T, f *fakes) {
	t.Helper()
	k := svcKey("10.54.213.247", 80, "tcp")
	dests, err := f.ipvs.Destinations(k)
	if err != nil || len(dests) == 0 {
		t.Fatalf("no destination to change on %v: %v", k, err)
	}
	d := dests[0]
	d.Weight += 5
	must(t, f.ipvs.UpdateDestination(k, d))
}
