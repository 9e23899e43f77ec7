package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ravel-lb/ravel/schema"
)

// DefaultValveConfirm is Options.ValveConfirm when it is zero.
const DefaultValveConfirm = 10 * time.Second

// syncLogEvery is how often Run logs which caches it is still waiting for.
const syncLogEvery = 10 * time.Second

// Options configure a Source.
type Options struct {
	// Kubeconfig is the path of a kubeconfig file; empty means in-cluster configuration.
	Kubeconfig string
	// NodeSelector lists labels a node must carry to be Selected.
	NodeSelector map[string]string
	// Quiet and MaxDelay coalesce changes: a snapshot is published once no change arrived for
	// Quiet, and at the latest MaxDelay after the first unpublished change. Both zero publishes
	// every change at once.
	Quiet, MaxDelay time.Duration
	// KeepLastEndpoints turns the safety valve on (see valve.go for the exact rule).
	KeepLastEndpoints bool
	// ValveConfirm is how long the API must have been reachable, and a service held by the
	// safety valve must have been held, before a confirming list may release it. Zero means
	// DefaultValveConfirm.
	ValveConfirm time.Duration
	// Refs are the service ports to resolve. Only their namespaces are watched.
	Refs []ServiceRef
	// Logger receives the Source's logs and client-go's; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the ravel_kube_* metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Standby starts the Source without writing its metrics, for a Source started beside a
	// running one on a reload: it shares that one's collectors, and writes them only once
	// Activate says it took over.
	Standby bool
}

// OptionsFrom builds Options from the config's kubernetes section (which must be set) and the
// Kubernetes targets of its services, the management service's among them (on every VIP of
// the pool, so in each family the pool has): one ServiceRef each (RefOf). Logger and
// Registerer are left for the caller.
func OptionsFrom(c *schema.ClusterConfig) Options {
	k := c.Kubernetes
	o := Options{
		Kubeconfig:        k.Kubeconfig,
		NodeSelector:      k.NodeSelector,
		Quiet:             time.Duration(k.Debounce.Quiet),
		MaxDelay:          time.Duration(k.Debounce.MaxDelay),
		KeepLastEndpoints: k.KeepLastEndpoints,
	}
	for i := range c.Services {
		if s := &c.Services[i]; s.Kubernetes != nil {
			o.Refs = append(o.Refs, RefOf(s.Kubernetes, s.VIP))
		}
	}
	if m := c.Management.Kubernetes; m != nil && c.Management.Port > 0 {
		for _, vip := range c.VIPPool {
			o.Refs = append(o.Refs, RefOf(m, vip))
		}
	}
	return o
}

// Source watches the Kubernetes API and publishes Snapshots. Create it with NewSource, start it
// with Run, and read Snapshots.
type Source struct {
	// Set by the constructor, read-only afterwards.
	opts     Options
	log      *slog.Logger
	klog     klog.Logger
	client   kubernetes.Interface
	clock    clock.Clock
	m        *metrics
	refs     []ServiceRef            // sorted, without duplicates
	refsOf   map[string][]ServiceRef // "namespace/service" → its refs
	nodes    *store
	services map[string]*store // by namespace
	slices   map[string]*store // by namespace
	watchers []*watcher
	out      chan *Snapshot // 1 slot; publish replaces an unread snapshot
	signal   chan struct{}  // 1 slot; a store or watcher has news for the loop
	running  atomic.Bool
	// confirmFn is the safety valve's confirming LIST (confirmList; tests stub it).
	confirmFn func(ctx context.Context, ref ServiceRef) (int, error)

	// Written by the reflectors' goroutines (stores, watchers), taken by the loop.
	mu           sync.Mutex
	dirty        map[ServiceRef]bool // ref → touched by a re-list of its EndpointSlices
	nodesDirty   bool
	nodesRelist  bool // the nodes were re-listed since the last step
	healthDirty  bool
	pendingSince time.Time // first change not yet taken by a step; zero if none

	// Owned by the Run goroutine.
	loop loopState
}

// NewSource returns a Source that reads opts.Kubeconfig, or the in-cluster configuration when it
// is empty.
func NewSource(opts Options) (*Source, error) {
	var cfg *rest.Config
	var err error
	if opts.Kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kube: in-cluster config (kubernetes.kubeconfig is empty): %w", err)
		}
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kube: kubeconfig %s: %w", opts.Kubeconfig, err)
		}
	}
	return NewSourceFromConfig(cfg, opts)
}

// NewSourceFromConfig returns a Source that talks to the API server of restCfg (opts.Kubeconfig
// is ignored). restCfg.Timeout is not applied to the watches: it is an http.Client timeout,
// which would cut every watch stream after that long.
func NewSourceFromConfig(restCfg *rest.Config, opts Options) (*Source, error) {
	cfg := rest.CopyConfig(restCfg)
	cfg.Timeout = 0
	if cfg.UserAgent == "" {
		cfg.UserAgent = "ravel"
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: client: %w", err)
	}
	return newSource(client, opts)
}

func newSource(client kubernetes.Interface, opts Options) (*Source, error) {
	if opts.ValveConfirm <= 0 {
		opts.ValveConfirm = DefaultValveConfirm
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m, err := newMetrics(opts.Registerer, opts.Standby)
	if err != nil {
		return nil, err
	}
	s := &Source{
		opts:     opts,
		log:      opts.Logger,
		klog:     logr.FromSlogHandler(opts.Logger.Handler()),
		client:   client,
		clock:    clock.RealClock{},
		m:        m,
		refsOf:   map[string][]ServiceRef{},
		services: map[string]*store{},
		slices:   map[string]*store{},
		out:      make(chan *Snapshot, 1),
		signal:   make(chan struct{}, 1),
		dirty:    map[ServiceRef]bool{},
	}
	for _, r := range opts.Refs {
		if r.Namespace == "" || r.Service == "" {
			return nil, fmt.Errorf("kube: service ref %+v needs a namespace and a service", r)
		}
		s.refs = append(s.refs, r)
	}
	slices.SortFunc(s.refs, CompareRefs)
	s.refs = slices.Compact(s.refs)
	for _, r := range s.refs {
		k := r.Namespace + "/" + r.Service
		s.refsOf[k] = append(s.refsOf[k], r)
	}
	s.confirmFn = s.confirmList
	s.addWatchers()
	return s, nil
}

// Snapshots returns the channel of published snapshots. It holds at most one: a snapshot that
// was not read yet is replaced by the next one, whose Changed and NodesChanged then cover both.
// The channel is closed when Run returns.
func (s *Source) Snapshots() <-chan *Snapshot { return s.out }

// Run starts the watches, waits until every cache has synced, publishes the first snapshot and
// then one per coalesced batch of changes, until ctx is done. It returns nil when ctx ends it.
func (s *Source) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("kube: Source.Run called twice")
	}
	defer close(s.out)
	ctx = klog.NewContext(ctx, s.klog)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: reflectors and confirming lists end with ctx
	defer cancel()
	for _, w := range s.watchers {
		wg.Go(func() { w.refl.RunWithContext(ctx) })
	}
	if !s.waitSynced(ctx) {
		return nil
	}
	s.runLoop(ctx, &wg)
	return nil
}

// waitSynced blocks until every store has had its first list, or ctx is done.
func (s *Source) waitSynced(ctx context.Context) bool {
	start := s.clock.Now()
	next := start.Add(syncLogEvery)
	for {
		pending := s.unsynced()
		if len(pending) == 0 {
			s.log.Info("kubernetes caches synced", "watches", len(s.watchers), "took", s.clock.Since(start).Round(time.Millisecond))
			return true
		}
		t := s.clock.NewTimer(next.Sub(s.clock.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-s.signal:
			t.Stop()
		case <-t.C():
			next = next.Add(syncLogEvery)
			s.log.Warn("waiting for kubernetes caches to sync; nothing is published until they have",
				"pending", pending, "waited", s.clock.Since(start).Round(time.Second), "err", s.lastError())
		}
	}
}

// unsynced names the watches whose store has not had its first list.
func (s *Source) unsynced() []string {
	var out []string
	for _, w := range s.watchers {
		if !w.st.hasSynced() {
			out = append(out, w.name)
		}
	}
	return out
}

// poke tells the loop that something changed.
func (s *Source) poke() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// markDirty queues refs for re-resolution; relist says an EndpointSlice re-list touched them.
func (s *Source) markDirty(refs []ServiceRef, relist bool) {
	if len(refs) == 0 {
		return
	}
	s.mu.Lock()
	for _, r := range refs {
		s.dirty[r] = s.dirty[r] || relist
	}
	s.notePendingLocked()
	s.mu.Unlock()
	s.poke()
}

// OneSnapshot runs a Source until its first snapshot, for one-shot commands such as `ravel
// plan`. When ctx ends first, the error says which caches had not synced and why.
func OneSnapshot(ctx context.Context, opts Options) (*Snapshot, error) {
	s, err := NewSource(opts)
	if err != nil {
		return nil, err
	}
	return s.first(ctx)
}

func (s *Source) first(parent context.Context) (*Snapshot, error) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var snap *Snapshot
	select {
	case snap = <-s.out:
	case <-parent.Done():
	}
	pending, lastErr := s.unsynced(), s.lastError()
	cancel()
	if err := <-done; err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, fmt.Errorf("kube: no snapshot before %w (caches not synced: %v; last error: %v)",
			context.Cause(parent), pending, lastErr)
	}
	return snap, nil
}

// notePendingLocked records when the first change since the last step arrived, for
// ravel_kube_change_to_snapshot_seconds. Call with s.mu held.
func (s *Source) notePendingLocked() {
	if s.pendingSince.IsZero() {
		s.pendingSince = s.clock.Now()
	}
}

// Deactivate stops s writing the shared metrics (it is being replaced; see Activate).
func (s *Source) Deactivate() { s.m.deactivate() }

// Activate is called when s takes over from replaced (a reload changed the watched services;
// replaced is nil if none was running), after replaced was cancelled and deactivated: s starts
// writing the shared metrics, with what it kept on standby, and the status series of service
// ports only replaced watched are dropped.
func (s *Source) Activate(replaced *Source) {
	var refs []ServiceRef
	if replaced != nil {
		refs = replaced.refs
	}
	s.m.activate(refs)
}
