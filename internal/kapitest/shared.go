package kapitest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// Start starts a server for this test and stops it in t.Cleanup. If the binaries are unavailable
// and RAVEL_REQUIRE_KAPI is not set, it calls t.Skip; any other failure is fatal.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			t.Skip(err.Error())
		}
		t.Fatalf("kapitest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartShared starts a server that the caller must Stop, for use in TestMain. Its error wraps
// ErrUnavailable if the binaries are missing and RAVEL_REQUIRE_KAPI is not set.
func StartShared() (*Server, error) { return NewServer() }

var (
	sharedMu      sync.Mutex
	sharedServer  *Server
	sharedErr     error
	sharedStarted bool
)

// RunShared starts one server, runs the tests and stops the server; use it as
// `os.Exit(kapitest.RunShared(m))` in TestMain. Tests get the server from Shared. If the binaries
// are unavailable (and not required) the tests still run, and Shared skips them.
func RunShared(m *testing.M) int {
	s, err := StartShared()
	sharedMu.Lock()
	sharedServer, sharedErr, sharedStarted = s, err, true
	sharedMu.Unlock()
	if err != nil && !errors.Is(err, ErrUnavailable) {
		fmt.Fprintf(os.Stderr, "kapitest: %v\n", err)
		return 1
	}
	if s != nil {
		defer s.Stop()
	}
	return m.Run()
}

// Shared returns the server started by RunShared. It skips the test if the binaries are
// unavailable and fails it if RunShared was not called from TestMain.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	s, err, started := sharedServer, sharedErr, sharedStarted
	sharedMu.Unlock()
	switch {
	case !started:
		t.Fatal("kapitest.Shared: call os.Exit(kapitest.RunShared(m)) from TestMain first")
	case err != nil:
		t.Skip(err.Error())
	}
	return s
}
