package kube

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	testingclock "k8s.io/utils/clock/testing"
)

// harness drives a Source's loop without an API server: the test writes into the stores as the
// reflectors would, moves a fake clock, and stubs the safety valve's confirming LIST.
type harness struct {
	t   *testing.T
	s   *Source
	clk *testingclock.FakeClock

	mu           sync.Mutex
	confirmReady int
	confirmErr   error
	confirmCalls int
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := newSource(nil, opts) // no client: nothing here talks to an API server
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: s, clk: testingclock.NewFakeClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))}
	s.clock = h.clk
	s.confirmFn = func(context.Context, ServiceRef) (int, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.confirmCalls++
		return h.confirmReady, h.confirmErr
	}
	return h
}

// start lists every store once (the initial sync), runs the loop and returns the first snapshot.
func (h *harness) start(nodes []*corev1.Node, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) *Snapshot {
	h.t.Helper()
	var list []any
	for _, n := range nodes {
		list = append(list, n)
	}
	must(h.t, h.s.nodes.Replace(list, "1"))
	for ns, st := range h.s.services {
		list = nil
		for _, o := range svcs {
			if o.Namespace == ns {
				list = append(list, o)
			}
		}
		must(h.t, st.Replace(list, "1"))
	}
	for ns, st := range h.s.slices {
		list = nil
		for _, o := range eps {
			if o.Namespace == ns {
				list = append(list, o)
			}
		}
		must(h.t, st.Replace(list, "1"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { h.s.runLoop(ctx, &wg) })
	h.t.Cleanup(func() { cancel(); wg.Wait() })
	return h.next()
}

func (h *harness) next() *Snapshot {
	h.t.Helper()
	select {
	case s := <-h.s.out:
		return s
	case <-time.After(5 * time.Second):
		h.t.Fatal("no snapshot published")
		return nil
	}
}

// none asserts that nothing is published for a moment (the loop runs in real time; only its
// timers use the fake clock).
func (h *harness) none() {
	h.t.Helper()
	select {
	case s := <-h.s.out:
		h.t.Fatalf("unexpected snapshot: %+v", s)
	case <-time.After(100 * time.Millisecond):
	}
}

// settle waits until the loop has taken the pending signal and sleeps on a fake-clock timer.
func (h *harness) settle() {
	h.t.Helper()
	time.Sleep(20 * time.Millisecond) // let the loop record its events at the current fake time
	deadline := time.Now().Add(5 * time.Second)
	for len(h.s.signal) > 0 || !h.clk.HasWaiters() {
		if time.Now().After(deadline) {
			h.t.Fatal("the loop never armed a timer")
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) watcher(name string) *watcher {
	for _, w := range h.s.watchers {
		if w.name == name {
			return w
		}
	}
	h.t.Fatalf("no watcher %s", name)
	return nil
}

// apiDown marks a watch failing as a refused list would.
func (h *harness) apiDown(name string) {
	h.watcher(name).failed(context.Background(), errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), true)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// node builds an expected Node.
func node(name, ip string, ready, cordoned, selected bool) Node {
	return Node{Name: name, Address: netip.MustParseAddr(ip), Ready: ready, Cordoned: cordoned, Selected: selected}
}

// counterValue reads a counter or gauge.
func counterValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
