package health

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests complete scheduler_test.go: InFlight as sampled, fairness, the default bound,
// a job changed by Set, Set on a running scheduler, per-job intervals, and stopping.

// storeMax raises m to n if n is larger.
func storeMax(m *atomic.Int64, n int64) {
	for p := m.Load(); n > p && !m.CompareAndSwap(p, n); p = m.Load() {
	}
}

// acceptCloser is a listener that accepts and closes connections (a cheap TCP check target).
func acceptCloser(t *testing.T) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String()), &n
}

// TestSchedulerInFlightSampled: 20 jobs on a server that holds each request 300 ms, at most
// 4 in flight, over a fixed 2 s window. The server never sees more than 4 at once and does
// see 4; InFlight, sampled every 2 ms, and OnInFlight never say more than 4 and do say 4; and
// no job starves: every one of the 20 gets a result.
func TestSchedulerInFlightSampled(t *testing.T) {
	var cur, peak atomic.Int64
	_, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storeMax(&peak, cur.Add(1))
		time.Sleep(300 * time.Millisecond)
		cur.Add(-1)
	}))
	var reported atomic.Int64
	var mu sync.Mutex
	ran := map[string]int{}
	s := NewScheduler(Options{MaxInFlight: 4,
		OnResult: func(id string, r Result) {
			mu.Lock()
			ran[id]++
			mu.Unlock()
		},
		OnInFlight: func(n int) { storeMax(&reported, int64(n)) }})
	jobs := map[string]Job{}
	for i := range 20 {
		jobs["j"+strconv.Itoa(i)] = Job{Interval: 100 * time.Millisecond, Probe: Probe{Kind: HTTP, Addr: addr, Path: "/" + strconv.Itoa(i), Timeout: 5 * time.Second}}
	}
	s.Set(jobs)
	runScheduler(t, s)
	var sampled int
	end := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) {
		sampled = max(sampled, s.InFlight())
		time.Sleep(2 * time.Millisecond)
	}
	if p := peak.Load(); p != 4 {
		t.Errorf("the server saw at most %d requests at once, want exactly MaxInFlight 4", p)
	}
	if sampled != 4 {
		t.Errorf("InFlight sampled at most %d, want 4 (never more, and 4 with 20 jobs waiting)", sampled)
	}
	if r := reported.Load(); r != 4 {
		t.Errorf("OnInFlight reported at most %d, want 4", r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(ran)
		mu.Unlock()
		if n == 20 || time.Now().After(deadline) {
			if n != 20 {
				t.Errorf("%d of 20 jobs had a result: the others starved", n)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p := peak.Load(); p > 4 {
		t.Errorf("the server saw %d requests at once later on, want at most 4", p)
	}
}

// TestSchedulerDefaultMaxInFlight: MaxInFlight 0 means 256.
func TestSchedulerDefaultMaxInFlight(t *testing.T) {
	var cur, peak atomic.Int64
	release := make(chan struct{})
	_, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storeMax(&peak, cur.Add(1))
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		cur.Add(-1)
	}))
	s := NewScheduler(Options{})
	jobs := map[string]Job{}
	for i := range 300 {
		jobs["j"+strconv.Itoa(i)] = Job{Interval: 100 * time.Millisecond, Probe: Probe{Kind: HTTP, Addr: addr, Timeout: 15 * time.Second}}
	}
	s.Set(jobs)
	// Stop the scheduler before releasing the handlers (cleanups run last in, first out).
	t.Cleanup(func() { close(release) })
	runScheduler(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for peak.Load() < 256 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // time for a 257th to arrive, were it allowed
	if p := peak.Load(); p != 256 {
		t.Errorf("300 blocked jobs with the default bound: %d at once, want 256", p)
	}
	if n := s.InFlight(); n != 256 {
		t.Errorf("InFlight %d while 256 probes are held, want 256", n)
	}
}

// TestSchedulerChangedJob: a job whose Job changes under the same id is probed as the new
// one and no more as the old one.
func TestSchedulerChangedJob(t *testing.T) {
	a, aHits := acceptCloser(t)
	b, bHits := acceptCloser(t)
	var results atomic.Int64
	s := NewScheduler(Options{MaxInFlight: 4, OnResult: func(id string, r Result) {
		if id == "x" && r.OK {
			results.Add(1)
		}
	}})
	s.Set(map[string]Job{"x": {Interval: 100 * time.Millisecond, Probe: Probe{Kind: TCP, Addr: a, Timeout: time.Second}}})
	runScheduler(t, s)
	waitFor(t, 10*time.Second, "two checks of a", func() bool { return aHits.Load() >= 2 })
	s.Set(map[string]Job{"x": {Interval: 100 * time.Millisecond, Probe: Probe{Kind: TCP, Addr: b, Timeout: time.Second}}})
	waitFor(t, 10*time.Second, "two checks of b", func() bool { return bHits.Load() >= 2 })
	time.Sleep(300 * time.Millisecond) // a check of a in flight at Set may still land
	before := aHits.Load()
	resultsBefore := results.Load()
	time.Sleep(time.Second)
	if n := aHits.Load() - before; n != 0 {
		t.Errorf("the old target got %d checks in 1 s after the job changed, want 0", n)
	}
	if n := results.Load() - resultsBefore; n < 2 {
		t.Errorf("the changed job delivered %d results in 1 s at a 100 ms interval, want it to go on", n)
	}
}

// TestSchedulerSetWakesRun: a job Set on a running scheduler that had nothing to do runs
// within its interval, not at the idle loop's next wake-up.
func TestSchedulerSetWakesRun(t *testing.T) {
	addr, _ := acceptCloser(t)
	got := make(chan string, 16)
	s := NewScheduler(Options{OnResult: func(id string, r Result) {
		select {
		case got <- id:
		default:
		}
	}})
	runScheduler(t, s)
	time.Sleep(100 * time.Millisecond) // Run is idle, waiting on its timer
	s.Set(map[string]Job{"late": {Interval: 200 * time.Millisecond, Probe: Probe{Kind: TCP, Addr: addr, Timeout: time.Second}}})
	select {
	case id := <-got:
		if id != "late" {
			t.Errorf("result for %q, want late", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a job Set on an idle running scheduler did not run in 10 s (200 ms interval)")
	}
}

// TestSchedulerPerJobInterval: each job keeps its own interval: over about 2.5 s a 100 ms
// job runs many times but never more than its interval allows, and a 1 s job runs at most
// once per second (its first run anywhere in its first second).
func TestSchedulerPerJobInterval(t *testing.T) {
	addr, _ := acceptCloser(t)
	var fast, slow atomic.Int64
	s := NewScheduler(Options{MaxInFlight: 4, OnResult: func(id string, r Result) {
		switch id {
		case "fast":
			fast.Add(1)
		case "slow":
			slow.Add(1)
		}
	}})
	start := time.Now()
	s.Set(map[string]Job{
		"fast": {Interval: 100 * time.Millisecond, Probe: Probe{Kind: TCP, Addr: addr, Timeout: 50 * time.Millisecond}},
		"slow": {Interval: time.Second, Probe: Probe{Kind: TCP, Addr: addr, Timeout: 50 * time.Millisecond}},
	})
	runScheduler(t, s)
	time.Sleep(2500 * time.Millisecond)
	f, sl := fast.Load(), slow.Load()
	elapsed := time.Since(start)
	// Runs start at least an interval apart from a first one at or after start: at most
	// elapsed/interval + 1 of them have started by now.
	if most := int64(elapsed/(100*time.Millisecond)) + 1; f > most {
		t.Errorf("a 100 ms job ran %d times in %v, more than its interval allows (%d)", f, elapsed, most)
	}
	if most := int64(elapsed/time.Second) + 1; sl > most {
		t.Errorf("a 1 s job ran %d times in %v, more than its interval allows (%d)", sl, elapsed, most)
	}
	if sl < 1 {
		t.Errorf("a 1 s job never ran in %v", elapsed)
	}
	if f < 8 {
		t.Errorf("a 100 ms job ran %d times in %v, want it checked at its own interval", f, elapsed)
	}
}

// TestSchedulerStop: cancelling Run's context cuts probes in flight short, Run returns long
// before they would have ended, and neither they nor anything later delivers a result.
func TestSchedulerStop(t *testing.T) {
	var arrived atomic.Int64
	release := make(chan struct{})
	defer close(release)
	_, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	var results atomic.Int64
	s := NewScheduler(Options{MaxInFlight: 8, OnResult: func(string, Result) { results.Add(1) }})
	jobs := map[string]Job{}
	for i := range 4 {
		jobs["j"+strconv.Itoa(i)] = Job{Interval: 100 * time.Millisecond, Probe: Probe{Kind: HTTP, Addr: addr, Timeout: 20 * time.Second}}
	}
	s.Set(jobs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	waitFor(t, 10*time.Second, "4 probes held by the server", func() bool { return arrived.Load() == 4 })
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("Run did not return within 8 s of its context's end (the probes were held 10 s)")
	}
	if n := s.InFlight(); n != 0 {
		t.Errorf("InFlight %d after Run returned, want 0", n)
	}
	t.Logf("Run returned %v after cancel", time.Since(start))
	time.Sleep(300 * time.Millisecond)
	if n := results.Load(); n != 0 {
		t.Errorf("%d results delivered from probes cut short by the stop, want 0", n)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSchedulerSetKeepsSchedule: Set with the same jobs, every 20 ms, changes no job's
// schedule: with no jitter, each of 20 jobs with a 1 s interval runs at least an interval
// after its previous run (a Set that rescheduled them would make some run sooner), and
// still runs.
func TestSchedulerSetKeepsSchedule(t *testing.T) {
	addr, _ := acceptCloser(t)
	var mu sync.Mutex
	starts := map[string][]time.Time{}
	s := NewScheduler(Options{MaxInFlight: 8, OnResult: func(id string, r Result) {
		at := time.Now().Add(-r.Duration) // about when the probe started
		mu.Lock()
		starts[id] = append(starts[id], at)
		mu.Unlock()
	}})
	jobs := map[string]Job{}
	for i := range 20 {
		jobs["j"+strconv.Itoa(i)] = Job{Interval: time.Second, Probe: Probe{Kind: TCP, Addr: addr, Timeout: 500 * time.Millisecond}}
	}
	s.Set(jobs)
	runScheduler(t, s)
	end := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(end) {
		same := map[string]Job{}
		for id, j := range jobs {
			same[id] = j
		}
		s.Set(same)
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range jobs {
		ts := starts[id]
		if len(ts) < 2 {
			t.Errorf("%s ran %d times in 3.5 s at a 1 s interval, want at least 2", id, len(ts))
		}
		for i := 1; i < len(ts); i++ {
			// 100 ms of slack for the time between the probe's end and its result.
			if gap := ts[i].Sub(ts[i-1]); gap < 900*time.Millisecond {
				t.Errorf("%s ran again %v after its previous run, want at least its 1 s interval", id, gap)
			}
		}
	}
}

// TestSchedulerRemovedWhileRunning: a job removed while its probe runs is not probed again
// once that probe ends: the target sees no further request (results aside, which
// TestSchedulerSetKeepsUnchangedJobs covers).
func TestSchedulerRemovedWhileRunning(t *testing.T) {
	var hits, cur atomic.Int64
	_, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		cur.Add(1)
		time.Sleep(300 * time.Millisecond)
		cur.Add(-1)
	}))
	s := NewScheduler(Options{MaxInFlight: 4})
	s.Set(map[string]Job{"x": {Interval: 100 * time.Millisecond, Probe: Probe{Kind: HTTP, Addr: addr, Timeout: 5 * time.Second}}})
	runScheduler(t, s)
	waitFor(t, 10*time.Second, "probe in flight", func() bool { return cur.Load() == 1 })
	s.Set(map[string]Job{})
	waitFor(t, 10*time.Second, "end of the probe in flight", func() bool { return cur.Load() == 0 && s.InFlight() == 0 })
	before := hits.Load()
	time.Sleep(1500 * time.Millisecond)
	if n := hits.Load() - before; n != 0 {
		t.Errorf("a job removed while it ran was probed %d more times in 1.5 s, want 0", n)
	}
}
