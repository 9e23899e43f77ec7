package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// Watches, and what client-go v0.37.2 offers for their back-off (read in
// k8s.io/client-go/tools/cache/reflector.go, controller.go, shared_informer.go and
// k8s.io/apimachinery/pkg/util/wait/backoff.go):
//
//   - A Reflector waits between list-and-watch attempts (and between retries of a failed watch
//     request) with wait.Backoff{Duration: 800ms, Factor: 2, Cap: 30s, Jitter: 1.0}
//     .DelayWithReset(clock, 2m). The jitter is applied after the cap, so once capped each wait
//     is uniform in [30 s, 60 s) (the comment above defaultBackoffMax says so), and the
//     back-off returns to 800 ms two minutes after its last reset.
//   - ReflectorOptions.Backoff replaces those parameters, but nothing passes it through:
//     SharedInformerOptions, InformerOptions and cache.Config have no such field ("TODO(#136943):
//     Expose this configuration through SharedInformerFactory" in reflector.go). A
//     SharedIndexInformer therefore cannot be capped at 30 s.
//   - SharedIndexInformer.SetWatchErrorHandlerWithContext sees each error that ends a
//     ListAndWatch; a bare Reflector keeps that handler unexported (DefaultWatchErrorHandler,
//     which only logs).
//
// So each watch here is a bare Reflector built with NewReflectorWithOptions and watchBackoff
// (no jitter: every wait is at most 30 s), writing into our own store (store.go). The store
// also applies the transforms and tells a re-list (Replace) apart from watch events, which the
// safety valve needs. Errors are observed by watcher, the ListerWatcher the reflector calls: it
// sees every list and watch request, including the failed ones that the reflector retries
// without calling any error handler.

// watchBackoff is the reflectors' back-off: 0.8, 1.6, 3.2 ... 25.6, then 30 s per attempt.
var watchBackoff = wait.Backoff{
	Duration: 800 * time.Millisecond,
	Factor:   2,
	Cap:      30 * time.Second,
	Steps:    38, // ceil(Cap/Duration), as client-go's default; the cap ends the growth first
	Jitter:   0,
}

// backoffReset is client-go's unexported defaultBackoffReset: DelayWithReset returns to the
// initial delay when this long has passed since its last reset.
const backoffReset = 2 * time.Minute

// watcher is one reflector and its ListerWatcher wrapper.
type watcher struct {
	// Set at construction, read-only after.
	src       *Source
	resource  string // nodes, services, endpointslices
	namespace string // "" for nodes
	name      string // resource or resource/namespace, for logs
	inner     cache.ListerWatcherWithContext
	st        *store
	refl      *cache.Reflector
	delay     wait.DelayFunc // mirror of the reflector's back-off, for the metric

	// Guarded by src.mu.
	failing      error     // last request error while unhealthy; nil when healthy
	failingSince time.Time // start of the current failure
	lists        int       // Replace calls so far
}

var _ cache.ListerWatcherWithContext = (*watcher)(nil)

// addWatchers creates the reflectors: all nodes, and per referenced namespace its Services and
// the EndpointSlices labelled with a referenced service's name. Pods are never watched.
func (s *Source) addWatchers() {
	nodes := s.addWatcher("nodes", "", &corev1.Node{}, nodeTransform(s.opts.NodeSelector),
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return s.client.CoreV1().Nodes().List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return s.client.CoreV1().Nodes().Watch(ctx, o)
		})
	s.nodes = nodes.st
	sel := s.opts.NodeSelector
	nodes.st.unchanged = func(old, cur runtime.Object) bool {
		// Status heartbeats change the resourceVersion only, once transformed.
		return nodeFromAPI(old.(*corev1.Node), sel) == nodeFromAPI(cur.(*corev1.Node), sel)
	}
	nodes.st.onChange = func(_ []runtime.Object, relist bool) {
		s.mu.Lock()
		s.nodesDirty = true
		s.nodesRelist = s.nodesRelist || relist
		s.notePendingLocked()
		s.mu.Unlock()
		if relist {
			nodes.relisted()
		}
		s.poke()
	}

	names := map[string][]string{} // namespace → referenced services
	for _, r := range s.refs {
		if n := names[r.Namespace]; len(n) == 0 || n[len(n)-1] != r.Service {
			names[r.Namespace] = append(n, r.Service)
		}
	}
	for ns, svcs := range names {
		sw := s.addWatcher("services", ns, &corev1.Service{}, serviceTransform,
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return s.client.CoreV1().Services(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return s.client.CoreV1().Services(ns).Watch(ctx, o)
			})
		s.services[ns] = sw.st
		sw.st.onChange = func(touched []runtime.Object, relist bool) {
			var refs []ServiceRef
			for _, o := range touched {
				refs = append(refs, s.refsOf[ns+"/"+o.(*corev1.Service).Name]...)
			}
			// Dirty first, healthy second: a step in between must not publish the API as
			// healthy with the re-list's changes still unseen.
			s.markDirty(refs, false)
			if relist {
				sw.relisted()
			}
			s.poke()
		}

		// kubernetes.io/service-name in (a,b,...): only the slices of referenced services.
		selector := fmt.Sprintf("%s in (%s)", discoveryv1.LabelServiceName, strings.Join(svcs, ","))
		ew := s.addWatcher("endpointslices", ns, &discoveryv1.EndpointSlice{}, sliceTransformer(),
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.LabelSelector = selector
				return s.client.DiscoveryV1().EndpointSlices(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.LabelSelector = selector
				return s.client.DiscoveryV1().EndpointSlices(ns).Watch(ctx, o)
			})
		s.slices[ns] = ew.st
		ew.st.indexOf = sliceService
		ew.st.onChange = func(touched []runtime.Object, relist bool) {
			var refs []ServiceRef
			for _, o := range touched {
				refs = append(refs, s.refsOf[ns+"/"+sliceService(o)]...)
			}
			if relist {
				// A re-list that emptied a service touches none of its slices: mark them all.
				for _, svc := range svcs {
					refs = append(refs, s.refsOf[ns+"/"+svc]...)
				}
			}
			s.markDirty(refs, relist)
			if relist {
				ew.relisted()
			}
			s.poke()
		}
	}
}

func sliceService(o runtime.Object) string { return o.(*endpointSlice).service }

func (s *Source) addWatcher(resource, ns string, obj runtime.Object, transform cache.TransformFunc,
	list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) *watcher {
	w := &watcher{
		src:       s,
		resource:  resource,
		namespace: ns,
		name:      resource,
		inner:     &cache.ListWatch{ListWithContextFunc: list, WatchFuncWithContext: watchFn},
		delay:     watchBackoff.DelayWithReset(s.clock, backoffReset),
	}
	if ns != "" {
		w.name += "/" + ns
	}
	w.st = newStore(w.name, transform, nil)
	b := watchBackoff
	w.refl = cache.NewReflectorWithOptions(w, obj, w.st, cache.ReflectorOptions{
		Name:            w.name,
		TypeDescription: resource,
		Logger:          &s.klog,
		Backoff:         &b,
	})
	s.watchers = append(s.watchers, w)
	s.m.setBackoff(resource, ns, 0)
	return w
}

// ListWithContext lists through the client and records the outcome.
func (w *watcher) ListWithContext(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	obj, err := w.inner.ListWithContext(ctx, o)
	if err != nil {
		// A failed list ends the attempt: the reflector backs off once.
		w.failed(ctx, err, true)
	}
	// Success is recorded by relisted, once the result is in the store.
	return obj, err
}

// WatchWithContext opens a watch through the client and records the outcome.
func (w *watcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	wi, err := w.inner.WatchWithContext(ctx, o)
	// The reflector backs off after a failed plain watch request, and after a failed watch-list
	// request (initial events streamed, then Replace) when the error is "connection refused"
	// or 429 (isWatchErrorRetriable in reflector.go); after other watch-list errors it falls
	// back to a plain list at once.
	initial := o.SendInitialEvents != nil && *o.SendInitialEvents
	switch {
	case err != nil:
		w.failed(ctx, err, !initial || utilnet.IsConnectionRefused(err) || apierrors.IsTooManyRequests(err))
	case !initial:
		// The watch resumed from the last resourceVersion: nothing was missed.
		w.healthy()
	}
	return wi, err
}

// List is the context-free form of ListWithContext.
func (w *watcher) List(o metav1.ListOptions) (runtime.Object, error) {
	return w.ListWithContext(context.Background(), o)
}

// Watch is the context-free form of WatchWithContext.
func (w *watcher) Watch(o metav1.ListOptions) (watch.Interface, error) {
	return w.WatchWithContext(context.Background(), o)
}

// failed records a failed request. step says the reflector backs off before its next attempt.
func (w *watcher) failed(ctx context.Context, err error, step bool) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return // shutting down
	}
	s := w.src
	if step {
		d := w.delay()
		s.m.setBackoff(w.resource, w.namespace, d.Seconds())
		s.m.reset(w.resource, w.namespace, "error")
	}
	// An expired resourceVersion is routine (the reflector re-lists); the API is there.
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return
	}
	s.mu.Lock()
	first := w.failing == nil
	w.failing = err
	if first {
		w.failingSince = s.clock.Now()
		s.healthDirty = true
		s.notePendingLocked()
	}
	s.mu.Unlock()
	if first {
		s.log.Warn("kubernetes watch failing; retrying with back-off",
			"watch", w.name, "err", err)
		s.poke()
	}
}

// relisted records a list that landed in the store.
func (w *watcher) relisted() {
	s := w.src
	s.mu.Lock()
	w.lists++
	n := w.lists
	s.mu.Unlock()
	if n > 1 {
		s.m.reset(w.resource, w.namespace, "relist")
	}
	w.healthy()
}

// healthy records a successful list or watch request.
func (w *watcher) healthy() {
	s := w.src
	s.m.setBackoff(w.resource, w.namespace, 0)
	s.mu.Lock()
	was := w.failing
	since := w.failingSince
	w.failing = nil
	if was != nil {
		s.healthDirty = true
		s.notePendingLocked()
	}
	s.mu.Unlock()
	if was != nil {
		s.log.Info("kubernetes watch recovered", "watch", w.name,
			"down_for", s.clock.Since(since).Round(time.Millisecond), "last_err", was)
		s.poke()
	}
}

// apiFailing returns the error of a failing watch, nil when every watch is healthy. Call with
// s.mu held.
func (s *Source) apiFailingLocked() error {
	for _, w := range s.watchers {
		if w.failing != nil {
			return fmt.Errorf("%s: %w", w.name, w.failing)
		}
	}
	return nil
}

// lastError is apiFailingLocked for callers without the lock.
func (s *Source) lastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiFailingLocked()
}
