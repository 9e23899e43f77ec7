package daemon

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/kube"
)

// KubeFeed is one stream of Kubernetes snapshots that survives reloads. A reload that changes
// what is watched (a service added, a selector, the debounce, the kubeconfig) starts a new
// Source beside the running one; the old one keeps feeding until the new one has synced every
// cache and published its first, complete snapshot, and only then stops. So a reload never
// leaves the roles without endpoints, and a new Source that cannot sync (a bad kubeconfig
// path is caught earlier, an unreachable server is not) never replaces a working one.
type KubeFeed struct {
	// Options gives the Source options of a config (without Logger and Registerer).
	options func(*config.Config) kube.Options
	// build creates a Source for a config; standby is kube.Options.Standby (true for a
	// Source started beside the running one, which must not write the shared metrics yet).
	build func(cfg *config.Config, standby bool) (*kube.Source, error)
	log   *slog.Logger
	out   chan *kube.Snapshot
	swaps chan *kube.Source
	wg    sync.WaitGroup // the run loop and every Source's Run, for Wait
	// pendingSince is when the watches of a reload started beside the running ones (Unix
	// nanoseconds), 0 while none wait to take over.
	pendingSince atomic.Int64

	// Owned by the reload path (Prepare and its commit), which is serialized.
	opts kube.Options
}

// NewKubeFeed returns a feed; Start it with the first config.
func NewKubeFeed(options func(*config.Config) kube.Options, build func(cfg *config.Config, standby bool) (*kube.Source, error), log *slog.Logger) *KubeFeed {
	return &KubeFeed{options: options, build: build, log: log, out: make(chan *kube.Snapshot), swaps: make(chan *kube.Source)}
}

// Snapshots is the stream. It is never closed; it ends with the feed's context.
func (f *KubeFeed) Snapshots() <-chan *kube.Snapshot { return f.out }

// Start builds the Source for cfg and runs the feed until ctx ends.
func (f *KubeFeed) Start(ctx context.Context, cfg *config.Config) error {
	src, err := f.build(cfg, false)
	if err != nil {
		return err
	}
	f.opts = watchOptions(f.options(cfg))
	f.wg.Go(func() { f.run(ctx, src) })
	return nil
}

// PendingFor says how long a reload's new watches have been waiting to sync and take over; 0
// when none are pending. A long wait means the new watches cannot list (the API server is
// unreachable with the new kubeconfig, or RBAC refuses a new namespace): the old ones still feed.
func (f *KubeFeed) PendingFor() time.Duration {
	since := f.pendingSince.Load()
	if since == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// Wait returns once the feed's context has ended and every Source it started has stopped. A
// Source in client-go's retry back-off only notices its context when the back-off ends (up to
// 30 s), so this can take that long; the feed itself never waits for it (see run).
func (f *KubeFeed) Wait() { f.wg.Wait() }

// Prepare checks whether cfg needs a new Source and builds it (an error leaves everything as
// it is). The returned commit starts the swap; call it once the roles run cfg.
func (f *KubeFeed) Prepare(cfg *config.Config) (commit func(context.Context), err error) {
	opts := watchOptions(f.options(cfg))
	if reflect.DeepEqual(opts, f.opts) {
		return func(context.Context) {}, nil
	}
	src, err := f.build(cfg, true)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		f.opts = opts
		f.log.Info("Kubernetes watches change with the new config: starting them beside the running ones", "services", len(opts.Refs))
		select {
		case f.swaps <- src:
		case <-ctx.Done():
		}
	}, nil
}

// watchOptions strips what does not describe the watches and orders the refs.
func watchOptions(o kube.Options) kube.Options {
	o.Logger, o.Registerer = nil, nil
	o.Refs = slices.Clone(o.Refs)
	slices.SortFunc(o.Refs, kube.CompareRefs)
	o.Refs = slices.Compact(o.Refs)
	return o
}

type runningSource struct {
	src    *kube.Source
	cancel context.CancelFunc
}

func (f *KubeFeed) start(ctx context.Context, src *kube.Source) *runningSource {
	sctx, cancel := context.WithCancel(ctx)
	r := &runningSource{src: src, cancel: cancel}
	f.wg.Go(func() {
		if err := src.Run(sctx); err != nil && sctx.Err() == nil {
			f.log.Error("Kubernetes source stopped", "err", err)
		}
	})
	return r
}

// run forwards snapshots from the current Source, merging those the roles have not read yet,
// and performs swaps.
func (f *KubeFeed) run(ctx context.Context, first *kube.Source) {
	cur := f.start(ctx, first)
	var next *runningSource
	var buf *kube.Snapshot // published by the current source, not read by the roles yet
	for {
		var out chan<- *kube.Snapshot
		if buf != nil {
			out = f.out
		}
		var curC, nextC <-chan *kube.Snapshot
		if cur != nil {
			curC = cur.src.Snapshots()
		}
		if next != nil {
			nextC = next.src.Snapshots()
		}
		// A Source's channel closes when its Run returns; a closed channel is not selected
		// again (it would always be ready).
		select {
		case <-ctx.Done():
			return // the Sources end with ctx (Wait waits for them)
		case s, ok := <-curC:
			if !ok { // its Run returned: the roles keep the last snapshot
				cur = nil
				continue
			}
			buf = mergeSnapshots(buf, s)
		case s, ok := <-nextC:
			if !ok {
				next = nil
				f.pendingSince.Store(0)
				continue
			}
			// The new watches have synced: they take over. Their first snapshot lists every
			// service and sets NodesChanged, so the roles recompute everything from it.
			//
			// The old Source is cancelled, not waited for: a reflector in client-go's retry
			// back-off sleeps without watching its context (up to the 30 s cap), and waiting
			// would stall this loop, and with it every snapshot, for that long. Silenced
			// first, it writes no metric after the new one took them over.
			var replaced *kube.Source
			if cur != nil {
				cur.cancel()
				cur.src.Deactivate()
				replaced = cur.src
			}
			next.src.Activate(replaced)
			cur, next = next, nil
			f.pendingSince.Store(0)
			buf = s
			f.log.Info("new Kubernetes watches synced and took over")
		case src := <-f.swaps:
			if next != nil { // a second reload before the first one's watches synced
				// On standby, it wrote no metrics and leaves none behind. Not waited for
				// (see above): it may be sleeping in a back-off.
				next.cancel()
			}
			next = f.start(ctx, src)
			if f.pendingSince.Load() == 0 { // a second reload keeps the first one's start
				f.pendingSince.Store(time.Now().UnixNano())
			}
		case out <- buf:
			buf = nil
		}
	}
}

// mergeSnapshots returns s as if it replaced old unread: its Changed and NodesChanged cover both.
func mergeSnapshots(old, s *kube.Snapshot) *kube.Snapshot {
	if old == nil {
		return s
	}
	m := *s
	m.NodesChanged = old.NodesChanged || s.NodesChanged
	seen := map[kube.ServiceRef]bool{}
	m.Changed = nil
	for _, r := range append(slices.Clone(old.Changed), s.Changed...) {
		if !seen[r] {
			seen[r] = true
			m.Changed = append(m.Changed, r)
		}
	}
	return &m
}
