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

// runScheduler runs s until the test ends.
func runScheduler(t *testing.T, s *Scheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestSchedulerMaxInFlight(t *testing.T) {
	var cur, peak atomic.Int64
	_, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(300 * time.Millisecond)
		cur.Add(-1)
	}))
	var results atomic.Int64
	var s *Scheduler
	var overBound atomic.Bool
	s = NewScheduler(Options{MaxInFlight: 4, OnResult: func(string, Result) { results.Add(1) },
		OnInFlight: func(n int) {
			if n > 4 {
				overBound.Store(true)
			}
		}})
	jobs := map[string]Job{}
	for i := range 20 {
		jobs["j"+strconv.Itoa(i)] = Job{Interval: 100 * time.Millisecond, Probe: Probe{Kind: HTTP, Addr: addr, Path: "/" + strconv.Itoa(i), Timeout: 2 * time.Second}}
	}
	s.Set(jobs)
	runScheduler(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for results.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if p := peak.Load(); p != 4 {
		t.Errorf("peak concurrent probes %d, want exactly MaxInFlight 4 (20 jobs waiting)", p)
	}
	if overBound.Load() {
		t.Error("OnInFlight reported more than 4 in flight")
	}
}

func TestSchedulerSetKeepsUnchangedJobs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := netip.MustParseAddrPort(ln.Addr().String())
	var mu sync.Mutex
	runs := map[string]int{}
	s := NewScheduler(Options{MaxInFlight: 4, OnResult: func(id string, r Result) {
		mu.Lock()
		runs[id]++
		mu.Unlock()
	}})
	jobs := map[string]Job{"a": {Interval: time.Second, Probe: Probe{Kind: TCP, Addr: addr, Timeout: 500 * time.Millisecond}}}
	s.Set(jobs)
	runScheduler(t, s)
	end := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(end) {
		s.Set(jobs) // unchanged: must not reset or re-run the job
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	n := runs["a"]
	mu.Unlock()
	if n < 2 || n > 4 {
		t.Errorf("a 1 s job over 3.5 s with Set called every 50 ms ran %d times, want 2 to 4", n)
	}

	s.Set(map[string]Job{})
	time.Sleep(time.Second) // a probe in flight at Set may still finish
	mu.Lock()
	before := runs["a"]
	mu.Unlock()
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	after := runs["a"]
	mu.Unlock()
	if after != before {
		t.Errorf("a removed job delivered %d more results", after-before)
	}
}

func TestSchedulerNoOverlapAndSpread(t *testing.T) {
	var cur, peak atomic.Int64
	_, slow := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(250 * time.Millisecond) // longer than the job's interval
		cur.Add(-1)
	}))
	var firsts sync.Map
	var mu sync.Mutex
	var times []time.Time
	var slowRuns atomic.Int64
	s := NewScheduler(Options{MaxInFlight: 64, OnResult: func(id string, r Result) {
		if id == "slow" {
			slowRuns.Add(1)
			return
		}
		if _, loaded := firsts.LoadOrStore(id, true); !loaded {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
		}
	}})
	_, fast := server(t, http.NotFoundHandler())
	jobs := map[string]Job{"slow": {Interval: 50 * time.Millisecond, Probe: Probe{Kind: HTTP, Addr: slow, Timeout: time.Second}}}
	for i := range 200 {
		jobs["t"+strconv.Itoa(i)] = Job{Interval: time.Second, Probe: Probe{Kind: TCP, Addr: fast, Timeout: 500 * time.Millisecond}}
	}
	s.Set(jobs)
	runScheduler(t, s)
	time.Sleep(2 * time.Second)
	if p := peak.Load(); p != 1 {
		t.Errorf("a job whose probe outlasts its interval ran %d at once, want 1", p)
	}
	if slowRuns.Load() < 3 {
		t.Errorf("the slow job ran %d times in 2 s, want it to go on after each run", slowRuns.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 200 {
		t.Fatalf("%d of 200 jobs ran in 2 s", len(times))
	}
	lo, hi := times[0], times[0]
	for _, x := range times {
		if x.Before(lo) {
			lo = x
		}
		if x.After(hi) {
			hi = x
		}
	}
	if hi.Sub(lo) < 500*time.Millisecond {
		t.Errorf("200 jobs added at once first ran within %v: not spread over their interval", hi.Sub(lo))
	}
}
