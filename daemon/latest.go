package daemon

import (
	"sync"

	"github.com/ravel-lb/ravel/kube"
)

// Latest holds the newest snapshot for loops that start and stop (the realserver role during
// failover): a loop that starts late still finds the last snapshot, and a slow loop only ever
// sees the newest one.
type Latest struct {
	mu   sync.Mutex // guards snap
	snap *kube.Snapshot
	ch   chan struct{}
}

// NewLatest returns an empty holder.
func NewLatest() *Latest { return &Latest{ch: make(chan struct{}, 1)} }

// Set stores s and wakes a waiting reader.
func (l *Latest) Set(s *kube.Snapshot) {
	l.mu.Lock()
	l.snap = s
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// Get returns the newest snapshot, nil before the first.
func (l *Latest) Get() *kube.Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snap
}

// Changed fires after Set.
func (l *Latest) Changed() <-chan struct{} { return l.ch }

// getOrNil is Get on a possibly nil holder.
func (l *Latest) getOrNil() *kube.Snapshot {
	if l == nil {
		return nil
	}
	return l.Get()
}
