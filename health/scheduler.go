package health

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Job is a probe run every Interval.
type Job struct {
	Probe    Probe
	Interval time.Duration
}

// Options configure a Scheduler.
type Options struct {
	// MaxInFlight bounds the probes running at once (256 if 0): a director with thousands of
	// backends must not open thousands of sockets together.
	MaxInFlight int
	// Jitter delays each run by a random fraction of its interval below Jitter (0.1: up to
	// 10%), so checks that started together drift apart.
	Jitter float64
	Client *Client
	// OnResult receives each result, from the scheduler's goroutines, in order per job id
	// (a job never runs twice at once). A job removed or changed by Set while its probe ran
	// may still deliver that one result: callers ignore ids they no longer know.
	OnResult func(id string, r Result)
	// OnInFlight, if set, is called with the number of probes running whenever it changes.
	OnInFlight func(n int)
}

// Scheduler runs jobs periodically. One goroutine keeps a heap of due times and hands due
// jobs to MaxInFlight workers: with 10,000 jobs that is MaxInFlight goroutines and one
// timer, not 10,000 tickers.
type Scheduler struct {
	o        Options
	wake     chan struct{}
	inFlight atomic.Int64
	hookMu   sync.Mutex // orders OnInFlight calls

	mu   sync.Mutex // guards jobs and due
	jobs map[string]*entry
	due  dueHeap
}

type entry struct {
	id      string
	job     Job
	next    time.Time
	index   int // in due; -1 while running or removed
	removed bool
}

// NewScheduler returns a scheduler with no jobs.
func NewScheduler(o Options) *Scheduler {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.Client == nil {
		o.Client = NewClient()
	}
	return &Scheduler{o: o, wake: make(chan struct{}, 1), jobs: map[string]*entry{}}
}

// Set replaces the set of jobs by diff: a job whose id and Job are unchanged keeps its
// schedule; a new or changed one first runs at a random point of its first interval (1,000
// nodes added at once must not be checked at once); a removed one stops.
func (s *Scheduler) Set(jobs map[string]Job) {
	now := time.Now()
	s.mu.Lock()
	for id, e := range s.jobs {
		if j, ok := jobs[id]; !ok || j != e.job {
			s.drop(e)
			delete(s.jobs, id)
		}
	}
	for id, j := range jobs {
		if _, ok := s.jobs[id]; ok {
			continue
		}
		e := &entry{id: id, job: j, next: now.Add(time.Duration(rand.Int64N(int64(max(j.Interval, time.Millisecond)))))}
		s.jobs[id] = e
		heap.Push(&s.due, e)
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler) drop(e *entry) {
	e.removed = true
	if e.index >= 0 {
		heap.Remove(&s.due, e.index)
	}
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// InFlight is the number of probes running now.
func (s *Scheduler) InFlight() int { return int(s.inFlight.Load()) }

// Run runs due jobs until ctx ends, then waits for the probes in flight.
func (s *Scheduler) Run(ctx context.Context) {
	work := make(chan *entry)
	var wg sync.WaitGroup
	for range s.o.MaxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range work {
				s.run(ctx, e)
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var ready []*entry
		now := time.Now()
		for s.due.Len() > 0 && !s.due[0].next.After(now) {
			ready = append(ready, heap.Pop(&s.due).(*entry))
		}
		wait := time.Hour
		if s.due.Len() > 0 {
			wait = s.due[0].next.Sub(now)
		}
		s.mu.Unlock()
		// Sending blocks while every worker is busy: that is the bound on probes in flight.
		// A job waiting here is out of the heap, so it cannot be queued twice.
		for _, e := range ready {
			select {
			case work <- e:
			case <-ctx.Done():
				return
			}
		}
		if len(ready) > 0 {
			continue // time has passed while handing them out
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

func (s *Scheduler) run(ctx context.Context, e *entry) {
	s.mu.Lock()
	removed := e.removed
	s.mu.Unlock()
	if removed {
		return // removed or changed by Set while it waited for a worker
	}
	s.inFlightAdd(1)
	start := time.Now()
	r := Run(ctx, e.job.Probe, s.o.Client)
	s.inFlightAdd(-1)
	if ctx.Err() != nil {
		return // stopping: a probe cut short says nothing about the backend
	}
	s.mu.Lock()
	removed = e.removed
	s.mu.Unlock()
	if !removed && s.o.OnResult != nil {
		s.o.OnResult(e.id, r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.removed {
		return
	}
	// The next run is an interval after this one started, or at once if it took longer, and
	// a little later by the jitter.
	next := start.Add(e.job.Interval)
	if now := time.Now(); now.After(next) {
		next = now
	}
	if j := s.o.Jitter * float64(e.job.Interval); j >= 1 {
		next = next.Add(time.Duration(rand.Int64N(int64(j))))
	}
	e.next = next
	heap.Push(&s.due, e)
	s.poke()
}

// inFlightAdd counts a probe in or out. The hook is called under a lock so that its values
// arrive in order: a gauge fed from it never stays at a stale count.
func (s *Scheduler) inFlightAdd(d int64) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	n := s.inFlight.Add(d)
	if s.o.OnInFlight != nil {
		s.o.OnInFlight(int(n))
	}
}

// dueHeap orders entries by their next run.
type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
