package kube

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The safety valve (Options.KeepLastEndpoints, kubernetes.keepLastEndpoints, on by default).
//
// Why: client-go never empties a cache while the API is away, but when the API comes back every
// reflector re-lists, and a re-list is taken as the whole truth. A control plane restored from
// an old or empty etcd backup, or whose EndpointSlice controller has not caught up yet, can
// answer with no EndpointSlices for services that are in fact running; programming that would
// withdraw every backend at once.
//
// The rule, applied to a configured service port (ref) each time it is re-resolved:
//
//  1. Hold. The ref keeps its last published state (the same endpoints) when all of these hold:
//     - the previous snapshot published it with ready endpoints (status ok);
//     - it now resolves to no endpoint at all (no-ready-endpoints with an empty list), while
//     its Service still exists with that port. Any other answer is explicit and published
//     as is: not-found (the Service was deleted), headless, external-name, no-such-port, or
//     endpoints listed but none ready;
//     - and the loss came with a re-list of the namespace's EndpointSlices, or some watch is
//     failing at that moment (the API is unreachable). A re-list counts from the moment it
//     replaced the cache, even before it reported itself (store.relists): after an API server
//     restart the Service re-list can make the loop resolve a service in that gap.
//     A loss seen through ordinary watch events while every watch is healthy (a scale-down to
//     zero, a deleted slice) is never held.
//  2. Release. A held ref is published fresh as soon as either
//     a. it resolves to anything but "no endpoint at all": endpoints came back, or the Service
//     was deleted or lost the port or changed type; or
//     b. the zero is confirmed: every watch has been healthy for ValveConfirm (default 10 s),
//     the ref has been held for at least ValveConfirm, and a LIST of the service's
//     EndpointSlices with resourceVersion "" (a consistent read, not served from a cache)
//     finds no ready endpoint for the port. The re-list and that LIST are two consecutive
//     syncs that agree, ValveConfirm apart. A failed LIST, or one that still finds ready
//     endpoints (the watch has not caught up), is retried every ValveConfirm.
//  3. Nodes. The node list is treated like a service: when it becomes empty, while the
//     previous snapshot had nodes, through a re-list of Nodes or while a watch fails, the
//     previous nodes are kept until a node is listed again or a LIST of Nodes (limit 1) on a
//     healthy API, at least ValveConfirm later, finds none.
//  4. Stale. Every snapshot published while a watch is failing or a ref is held has Stale set,
//     and ravel_kube_safety_valve_active is 1 (ravel_kube_safety_valve_held_services counts
//     the held refs). A warning is logged when the API becomes unreachable and when a ref is
//     held, an info line when the API is back and when a ref is released.
//
// With KeepLastEndpoints off nothing is held and Stale is never set: snapshots follow the caches
// exactly. During an outage the caches still hold the last listed state, so the difference is
// that a re-list is trusted at once.

// confirmTimeout bounds a confirming LIST.
const confirmTimeout = 10 * time.Second

// hold is a ref whose last known state the valve keeps publishing.
type hold struct {
	state     ServiceState    // published instead of the fresh state
	nodes     map[string]Node // the same, for the node list (key nodesKey)
	since     time.Time
	confirmAt time.Time // next confirming LIST
	inFlight  bool      // a confirming LIST is running
	confirmed bool      // a confirming LIST found no ready endpoint: release at the next step
}

// nodesKey is the holds key of the node list (a configured ServiceRef always has a namespace).
var nodesKey = ServiceRef{}

type confirmResult struct {
	ref   ServiceRef
	ready int
	err   error
}

// valve returns the state to publish for ref, given what it resolves to now. relist says an
// EndpointSlice re-list touched it; failing that a watch is failing.
func (s *Source) valve(now time.Time, ref ServiceRef, fresh ServiceState, relist, failing bool) ServiceState {
	l := &s.loop
	nothing := fresh.Status == StatusNoEndpoints && len(fresh.Endpoints) == 0
	if h := l.holds[ref]; h != nil {
		if nothing && !h.confirmed {
			return h.state
		}
		delete(l.holds, ref)
		why := "the API reports " + string(fresh.Status)
		if h.confirmed && nothing {
			why = "a confirming list found no ready endpoint"
		}
		s.log.Info("safety valve released a service", "namespace", ref.Namespace, "service", ref.Service,
			"port_name", ref.PortName, "status", fresh.Status, "held_for", now.Sub(h.since).Round(time.Millisecond), "why", why)
		return fresh
	}
	if !s.opts.KeepLastEndpoints || l.prev == nil || !nothing || !(relist || failing) {
		return fresh
	}
	prev, ok := l.prev.Services[ref]
	if !ok || prev.Status != StatusOK {
		return fresh
	}
	l.holds[ref] = &hold{state: prev, since: now, confirmAt: now.Add(s.opts.ValveConfirm)}
	why := "an EndpointSlice re-list returned none"
	if !relist {
		why = "the API is unreachable"
	}
	s.log.Warn("safety valve holds the last known endpoints of a service", "namespace", ref.Namespace,
		"service", ref.Service, "port_name", ref.PortName, "ready", readyCount(prev), "why", why,
		"confirm_after", s.opts.ValveConfirm)
	return prev
}

// valveNodes is valve for the node list: it returns the nodes to publish.
func (s *Source) valveNodes(now time.Time, fresh map[string]Node, relist, failing bool) map[string]Node {
	l := &s.loop
	if h := l.holds[nodesKey]; h != nil {
		if len(fresh) == 0 && !h.confirmed {
			return h.nodes
		}
		delete(l.holds, nodesKey)
		s.log.Info("safety valve released the node list", "nodes", len(fresh),
			"held_for", now.Sub(h.since).Round(time.Millisecond), "confirmed_empty", len(fresh) == 0)
		return fresh
	}
	if !s.opts.KeepLastEndpoints || l.prev == nil || len(fresh) > 0 || len(l.prev.Nodes) == 0 || !(relist || failing) {
		return fresh
	}
	l.holds[nodesKey] = &hold{nodes: l.prev.Nodes, since: now, confirmAt: now.Add(s.opts.ValveConfirm)}
	why := "a Node re-list returned none"
	if !relist {
		why = "the API is unreachable"
	}
	s.log.Warn("safety valve holds the last known nodes", "nodes", len(l.prev.Nodes), "why", why,
		"confirm_after", s.opts.ValveConfirm)
	return l.prev.Nodes
}

// nextConfirm is the earliest time a hold wants a confirming LIST.
func (s *Source) nextConfirm() (time.Time, bool) {
	var at time.Time
	ok := false
	for _, h := range s.loop.holds {
		if h.inFlight || h.confirmed {
			continue
		}
		if !ok || h.confirmAt.Before(at) {
			at, ok = h.confirmAt, true
		}
	}
	return at, ok
}

// startConfirms starts the confirming LISTs that are due and allowed.
func (s *Source) startConfirms(ctx context.Context, wg *sync.WaitGroup, now time.Time) {
	l := &s.loop
	for ref, h := range l.holds {
		if h.inFlight || h.confirmed || now.Before(h.confirmAt) {
			continue
		}
		if l.failing {
			h.confirmAt = now.Add(s.opts.ValveConfirm)
			continue
		}
		if ok := l.healthySince.Add(s.opts.ValveConfirm); now.Before(ok) {
			h.confirmAt = ok
			continue
		}
		h.inFlight = true
		wg.Go(func() {
			n, err := s.confirmFn(ctx, ref)
			select {
			case l.confirms <- confirmResult{ref, n, err}:
			case <-ctx.Done():
			}
		})
	}
}

// confirmed handles the result of a confirming LIST.
func (s *Source) confirmed(r confirmResult, now time.Time) {
	h := s.loop.holds[r.ref]
	if h == nil {
		return
	}
	h.inFlight = false
	args := []any{"namespace", r.ref.Namespace, "service", r.ref.Service, "port_name", r.ref.PortName}
	if r.ref == nodesKey {
		args = []any{"held", "node list"}
	}
	switch {
	case r.err != nil:
		h.confirmAt = now.Add(s.opts.ValveConfirm)
		s.log.Warn("safety valve: confirming list failed; still holding", append(args, "err", r.err)...)
	case r.ready > 0:
		h.confirmAt = now.Add(s.opts.ValveConfirm)
		s.log.Info("safety valve: the API lists ready endpoints that the cache lacks; still holding", append(args, "ready", r.ready)...)
	case r.ref == nodesKey:
		h.confirmed = true
		s.mu.Lock()
		s.nodesDirty = true
		s.notePendingLocked()
		s.mu.Unlock()
		s.poke()
	default:
		h.confirmed = true
		s.markDirty([]ServiceRef{r.ref}, false)
	}
}

// confirmList counts the ready endpoints of ref with a consistent LIST of its EndpointSlices
// (the Service comes from the cache), or for nodesKey whether any Node exists.
func (s *Source) confirmList(ctx context.Context, ref ServiceRef) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	if ref == nodesKey {
		nodes, err := s.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return 0, err
		}
		return len(nodes.Items), nil
	}
	list, err := s.client.DiscoveryV1().EndpointSlices(ref.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{discoveryv1.LabelServiceName: ref.Service}.String(),
	})
	if err != nil {
		return 0, err
	}
	var svc *corev1.Service
	if o := s.services[ref.Namespace].get(ref.Namespace + "/" + ref.Service); o != nil {
		svc = o.(*corev1.Service)
	}
	eps := make([]*endpointSlice, len(list.Items))
	nodes := newNodeNames()
	for i := range list.Items {
		eps[i] = keepSlice(&list.Items[i], nodes)
	}
	st, _ := resolveService(svc, eps, ref.PortName, ref.Family)
	return readyCount(st), nil
}
