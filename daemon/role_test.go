package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testLoop is a RoleLoop whose Run and Cleanup can be held inside, so that a test can make a
// Start or Stop overlap another one deterministically, and which records what happened.
type testLoop struct {
	// honourCtx: Run returns when its ctx ends; otherwise only when releaseRun is closed.
	honourCtx  bool
	releaseRun chan struct{} // closed by the test; nil: not needed
	runErr     error         // what Run returns

	holdCleanup    bool          // Cleanup waits for releaseCleanup
	releaseCleanup chan struct{} // closed by the test
	cleanupErr     error

	runEntered     chan struct{} // receives once per Run
	cancelSeen     chan struct{} // receives when a Run that ignores ctx sees it end
	cleanupEntered chan struct{} // receives once per Cleanup

	mu     sync.Mutex // guards events
	events []string
}

func newTestLoop() *testLoop {
	return &testLoop{
		honourCtx:      true,
		releaseRun:     make(chan struct{}),
		releaseCleanup: make(chan struct{}),
		runEntered:     make(chan struct{}, 8),
		cancelSeen:     make(chan struct{}, 8),
		cleanupEntered: make(chan struct{}, 8),
	}
}

func (l *testLoop) record(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *testLoop) Events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func (l *testLoop) Run(ctx context.Context) error {
	l.record("run")
	l.runEntered <- struct{}{}
	if l.honourCtx {
		select {
		case <-ctx.Done():
		case <-l.releaseRun:
		}
	} else {
		// Stop cancels ctx after it has claimed the controller: from here on Stop is in
		// progress, blocked until the test releases Run.
		select {
		case <-ctx.Done():
			l.record("cancelled")
			l.cancelSeen <- struct{}{}
		case <-l.releaseRun:
		}
		<-l.releaseRun
	}
	l.record("run returned")
	return l.runErr
}

func (l *testLoop) Cleanup(ctx context.Context) error {
	l.record("cleanup")
	l.cleanupEntered <- struct{}{}
	if l.holdCleanup {
		<-l.releaseCleanup
	}
	l.record("cleanup returned")
	return l.cleanupErr
}

// within returns f's result, failing the test if f blocks: a refused call must return at once,
// not wait for the transition in progress.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- f() }()
	select {
	case err := <-res:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked instead of being refused", what)
		return nil
	}
}

func recv(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestRoleStartIsIdempotent: Start of a running role does nothing; Stop of a stopped role does
// nothing; Stop cancels Run, waits for it, then cleans up, in that order.
func TestRoleStartIsIdempotent(t *testing.T) {
	l := newTestLoop()
	c := NewRoleController(l)
	ctx := context.Background()
	must(t, c.Stop(ctx)) // stopped: nothing to do
	must(t, c.Start(ctx))
	recv(t, l.runEntered, "Run")
	must(t, c.Start(ctx))
	if !c.Running() {
		t.Fatal("not running after Start")
	}
	must(t, c.Stop(ctx))
	if c.Running() {
		t.Fatal("running after Stop")
	}
	must(t, c.Stop(ctx))
	want := []string{"run", "run returned", "cleanup", "cleanup returned"}
	if diff := cmp.Diff(want, l.Events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// It can start again.
	must(t, c.Start(ctx))
	recv(t, l.runEntered, "second Run")
	must(t, c.Stop(ctx))
	if got := len(l.Events()); got != 8 {
		t.Errorf("%d events after a second start and stop, want 8: %q", got, l.Events())
	}
}

// TestRoleBusy: while a Stop is in progress (waiting for Run to return, or inside Cleanup),
// every other Start or Stop is refused with ErrBusy rather than interleaved.
func TestRoleBusy(t *testing.T) {
	tests := []struct {
		name string
		// hold makes the loop block in Stop's way; wait returns once Stop is blocked there.
		hold    func(l *testLoop)
		blocked func(t *testing.T, l *testLoop)
		release func(l *testLoop)
		// wantBefore are the events when Stop is blocked, wantAfter when it returned.
		wantBefore, wantAfter []string
	}{
		{
			name:       "Run slow to return",
			hold:       func(l *testLoop) { l.honourCtx = false },
			blocked:    func(t *testing.T, l *testLoop) { recv(t, l.cancelSeen, "Stop to cancel Run") },
			release:    func(l *testLoop) { close(l.releaseRun) },
			wantBefore: []string{"run", "cancelled"},
			wantAfter:  []string{"run", "cancelled", "run returned", "cleanup", "cleanup returned"},
		},
		{
			name:       "Cleanup in progress",
			hold:       func(l *testLoop) { l.holdCleanup = true },
			blocked:    func(t *testing.T, l *testLoop) { recv(t, l.cleanupEntered, "Cleanup") },
			release:    func(l *testLoop) { close(l.releaseCleanup) },
			wantBefore: []string{"run", "run returned", "cleanup"},
			wantAfter:  []string{"run", "run returned", "cleanup", "cleanup returned"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLoop()
			tt.hold(l)
			c := NewRoleController(l)
			ctx := context.Background()
			must(t, c.Start(ctx))
			recv(t, l.runEntered, "Run")

			stopped := make(chan error, 1)
			go func() { stopped <- c.Stop(ctx) }()
			tt.blocked(t, l)
			// Stop is now blocked: make sure it really is still in progress.
			select {
			case err := <-stopped:
				t.Fatalf("Stop returned (%v) while the loop held it", err)
			default:
			}
			if diff := cmp.Diff(tt.wantBefore, l.Events()); diff != "" {
				t.Errorf("events while Stop is blocked (-want +got):\n%s", diff)
			}
			if err := within(t, "Start during Stop", func() error { return c.Start(ctx) }); !errors.Is(err, ErrBusy) {
				t.Errorf("Start during Stop = %v, want ErrBusy", err)
			}
			if err := within(t, "Stop during Stop", func() error { return c.Stop(ctx) }); !errors.Is(err, ErrBusy) {
				t.Errorf("Stop during Stop = %v, want ErrBusy", err)
			}
			if !c.Running() {
				t.Errorf("Running() false before Stop finished")
			}

			tt.release(l)
			select {
			case err := <-stopped:
				if err != nil {
					t.Errorf("Stop: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Stop did not finish after the release")
			}
			if diff := cmp.Diff(tt.wantAfter, l.Events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			// The refused calls changed nothing: one Run, one Cleanup; and the controller is
			// usable again.
			if c.Running() {
				t.Error("running after Stop")
			}
			must(t, c.Start(ctx))
			recv(t, l.runEntered, "Run after the refusals")
			must(t, c.Stop(ctx))
		})
	}
}

// TestRoleStopWait: a loop that does not return within the stop wait is cleaned up anyway, and
// the overrun is reported.
func TestRoleStopWait(t *testing.T) {
	l := newTestLoop()
	l.honourCtx = false
	defer close(l.releaseRun) // let the abandoned Run end, for goleak
	c := NewRoleController(l)
	if c.stopWait != StopWait {
		t.Fatalf("default stop wait %s, want StopWait (%s)", c.stopWait, StopWait)
	}
	c.stopWait = 50 * time.Millisecond
	ctx := context.Background()
	must(t, c.Start(ctx))
	recv(t, l.runEntered, "Run")
	err := c.Stop(ctx)
	if err == nil || !strings.Contains(err.Error(), "did not finish within 50ms") {
		t.Errorf("Stop = %v, want the overrun reported", err)
	}
	want := []string{"run", "cancelled", "cleanup", "cleanup returned"}
	if diff := cmp.Diff(want, l.Events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if c.Running() {
		t.Error("running after Stop")
	}
}

// TestRoleStopReportsEveryError: an error of Run and every error of Cleanup are all returned;
// Run's context.Canceled is not an error.
func TestRoleStopReportsEveryError(t *testing.T) {
	errRun := errors.New("run failed")
	errChains := errors.New("iptables cleanup failed")
	errVIP := errors.New("unbind failed")
	tests := []struct {
		name       string
		runErr     error
		cleanupErr error
		want       []error
	}{
		{"both", errRun, errors.Join(errChains, errVIP), []error{errRun, errChains, errVIP}},
		{"cleanup only", nil, errVIP, []error{errVIP}},
		{"run only", errRun, nil, []error{errRun}},
		{"run cancelled", context.Canceled, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLoop()
			l.runErr, l.cleanupErr = tt.runErr, tt.cleanupErr
			c := NewRoleController(l)
			must(t, c.Start(context.Background()))
			recv(t, l.runEntered, "Run")
			err := c.Stop(context.Background())
			if tt.want == nil {
				if err != nil {
					t.Errorf("Stop = %v, want nil", err)
				}
				return
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Stop = %v: %q missing", err, w)
				}
			}
			if c.Running() {
				t.Error("running after a failed Stop")
			}
		})
	}
}

// TestRoleStopWithCancelledContext: Stop called with a context that has ended (the process is
// shutting down) still cleans up.
func TestRoleStopWithCancelledContext(t *testing.T) {
	l := newTestLoop()
	c := NewRoleController(l)
	ctx, cancel := context.WithCancel(context.Background())
	must(t, c.Start(ctx))
	recv(t, l.runEntered, "Run")
	cancel()
	must(t, c.Stop(ctx))
	want := []string{"run", "run returned", "cleanup", "cleanup returned"}
	if diff := cmp.Diff(want, l.Events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestRoleStopWithinDeadline: on shutdown the watcher gives Stop a deadline (ShutdownTimeout);
// a loop that does not end in time gets half of it, and the clean-up still runs within the
// deadline rather than after StopWait plus its own 30 s.
func TestRoleStopWithinDeadline(t *testing.T) {
	l := newTestLoop()
	l.honourCtx = false
	defer close(l.releaseRun)
	c := NewRoleController(l)
	must(t, c.Start(context.Background()))
	recv(t, l.runEntered, "Run")
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	err := c.Stop(ctx)
	if err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Errorf("Stop = %v, want the overrun reported", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Stop returned after its deadline (StopWait is %s): the clean-up was not bounded by it", StopWait)
	}
	want := []string{"run", "cancelled", "cleanup", "cleanup returned"}
	if diff := cmp.Diff(want, l.Events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
