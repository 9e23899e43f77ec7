package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBusy is returned by Start or Stop while the other (or the same) transition is running.
var ErrBusy = errors.New("a start or stop of the role is already in progress")

// RoleLoop is a role that can be started and stopped at run time (the realserver role during
// director failover).
type RoleLoop interface {
	// Run works until ctx ends.
	Run(ctx context.Context) error
	// Cleanup removes what the role programmed, reporting every error (not only the first).
	Cleanup(ctx context.Context) error
}

// StopWait is how long Stop waits for the role's periodic work to finish before cleaning up.
const StopWait = 5 * time.Second

// RoleController starts and stops a RoleLoop. Start and Stop are mutually exclusive: a call
// while a transition is running is refused with ErrBusy rather than interleaved.
type RoleController struct {
	loop     RoleLoop
	stopWait time.Duration // StopWait; tests shorten it. Read-only after NewRoleController.

	mu      sync.Mutex // guards the fields below
	busy    bool
	running bool
	cancel  context.CancelFunc
	done    chan error
}

// NewRoleController returns a stopped controller of loop.
func NewRoleController(loop RoleLoop) *RoleController {
	return &RoleController{loop: loop, stopWait: StopWait}
}

// Running reports whether the role is started.
func (c *RoleController) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

func (c *RoleController) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy {
		return ErrBusy
	}
	c.busy = true
	return nil
}

func (c *RoleController) end() {
	c.mu.Lock()
	c.busy = false
	c.mu.Unlock()
}

// Start runs the role in the background. Starting a running role does nothing.
func (c *RoleController) Start(ctx context.Context) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.end()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.loop.Run(rctx) }()
	c.cancel, c.done, c.running = cancel, done, true
	return nil
}

// Stop ends the role: it cancels the loop, waits for its current work to finish or StopWait,
// whichever is first, then cleans up. Every error is returned, joined.
func (c *RoleController) Stop(ctx context.Context) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.end()
	c.mu.Lock()
	running, cancel, done := c.running, c.cancel, c.done
	c.mu.Unlock()
	if !running {
		return nil
	}
	cancel()
	// Within a caller's deadline (shutdown), half of what is left goes to the loop's last
	// work and the rest to the clean-up.
	wait := c.stopWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/2)
	}
	var errs []error
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("role loop: %w", err))
		}
	case <-time.After(wait):
		errs = append(errs, fmt.Errorf("role loop did not finish within %s; cleaning up anyway", wait.Round(time.Millisecond)))
	}
	cctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var ccancel context.CancelFunc
		cctx, ccancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer ccancel()
	}
	if err := c.loop.Cleanup(cctx); err != nil {
		errs = append(errs, err)
	}
	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	return errors.Join(errs...)
}
