// Package parallel runs the iterations of a loop on a fixed number of goroutines: the worker
// pool that the Kubernetes benchmarks and bench/kubeload fill an API server with.
package parallel

import "sync"

// Do runs f(0), …, f(n-1) on workers goroutines (at least one) and returns when every call has
// returned. An error does not stop the others; Do returns the first one returned, nil if none.
func Do(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
