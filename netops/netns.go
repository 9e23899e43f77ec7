package netops

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// InNetns runs fn on an OS thread that has joined the network namespace at path; with path ""
// it just runs fn.
//
// A process started with os/exec inherits the network namespace of the thread that forks it,
// and os/exec forks on the calling goroutine's thread: locking the goroutine to a thread that
// has joined path makes every command fn starts run there. The thread goes back to its own
// namespace afterwards; if that fails it stays locked, and Go ends the thread when the
// goroutine exits rather than reusing it in the wrong namespace.
func InNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: setns %s: %w", path, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netns: back from %s: %w (after %v)", path, err, ferr) // thread stays locked
	}
	runtime.UnlockOSThread()
	return ferr
}
