package parallel

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDoRunsEachIndexOnce(t *testing.T) {
	for _, tt := range []struct{ n, workers int }{{0, 4}, {1, 4}, {100, 1}, {100, 16}, {3, 10}, {5, 0}} {
		t.Run(fmt.Sprintf("n=%d/workers=%d", tt.n, tt.workers), func(t *testing.T) {
			var mu sync.Mutex
			seen := map[int]int{}
			if err := Do(tt.n, tt.workers, func(i int) error {
				mu.Lock()
				defer mu.Unlock()
				seen[i]++
				return nil
			}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			if len(seen) != tt.n {
				t.Errorf("%d indexes run, want %d", len(seen), tt.n)
			}
			for i := range tt.n {
				if seen[i] != 1 {
					t.Errorf("f(%d) ran %d times, want 1", i, seen[i])
				}
			}
		})
	}
}

// Every worker is inside f at once: each call waits until all of them have started.
func TestDoUsesWorkersConcurrently(t *testing.T) {
	const workers = 4
	release := make(chan struct{})
	arrived := make(chan struct{}, workers)
	done := make(chan error, 1)
	go func() {
		done <- Do(workers, workers, func(int) error {
			arrived <- struct{}{}
			<-release
			return nil
		})
	}()
	for k := range workers {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatalf("only %d of %d calls started together", k, workers)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDoReturnsFirstErrorAndRunsTheRest(t *testing.T) {
	errFirst := errors.New("first")
	var calls atomic.Int32
	// One worker: the calls run in index order, so "first" is the first error returned.
	err := Do(10, 1, func(i int) error {
		calls.Add(1)
		switch i {
		case 3:
			return errFirst
		case 7:
			return errors.New("later")
		}
		return nil
	})
	if !errors.Is(err, errFirst) {
		t.Errorf("Do returned %v, want %v", err, errFirst)
	}
	if c := calls.Load(); c != 10 {
		t.Errorf("%d calls, want 10: an error must not stop the others", c)
	}
}
