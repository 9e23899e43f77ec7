package kube

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Source's Prometheus metrics. They are registered with Options.Registerer when
// it is set, and work unregistered otherwise (tests create many Sources).
//
// A Source started beside a running one on a reload (Options.Standby) shares its collectors
// but writes nothing until Activate: its failing watches or half-synced statuses must not
// overwrite the series of the Source that still feeds the roles. It keeps what it would have
// written, and Activate writes that.
type metrics struct {
	published     prometheus.Counter
	lastSnapshot  prometheus.Gauge
	serviceStatus *prometheus.GaugeVec // namespace, service, port_name, status
	backoff       *prometheus.GaugeVec // resource, namespace
	resets        *prometheus.CounterVec
	valveActive   prometheus.Gauge
	valveHeld     prometheus.Gauge
	latency       prometheus.Histogram

	mu       sync.Mutex // guards the fields below, and orders series writes with activate
	live     bool       // writes reach the collectors
	status   map[ServiceRef]Status
	backoffs map[[2]string]float64 // resource, namespace → current back-off seconds
	stale    bool
	held     int
	lastAt   float64 // last publish, Unix seconds; 0 before the first
}

func newMetrics(reg prometheus.Registerer, standby bool) (*metrics, error) {
	m := &metrics{
		live:     !standby,
		status:   map[ServiceRef]Status{},
		backoffs: map[[2]string]float64{},
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ravel_kube_snapshots_published_total",
			Help: "Snapshots of the cluster published to the reconciler.",
		}),
		lastSnapshot: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ravel_kube_last_snapshot_timestamp_seconds",
			Help: "Unix time of the last published snapshot.",
		}),
		serviceStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ravel_kube_service_status",
			Help: "1 for the published status of each configured service port (ok, no-ready-endpoints, headless, external-name, no-such-port, not-found).",
		}, []string{"namespace", "service", "port_name", "status"}),
		backoff: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ravel_kube_watch_backoff_seconds",
			Help: "Current back-off of a failing watch before its next list/watch attempt (0 when healthy; capped at 30 s).",
		}, []string{"resource", "namespace"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ravel_kube_watch_resets_total",
			Help: "Watch resets: failed list/watch attempts (reason=error) and re-lists after the initial list (reason=relist).",
		}, []string{"resource", "namespace", "reason"}),
		valveActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ravel_kube_safety_valve_active",
			Help: "1 while the published snapshot is stale: the API is unreachable or last known endpoints are held (kubernetes.keepLastEndpoints).",
		}),
		valveHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ravel_kube_safety_valve_held_services",
			Help: "Service ports whose last known endpoints are held by the safety valve.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ravel_kube_change_to_snapshot_seconds",
			Help:    "From the first change reaching the caches to the snapshot that carries it (includes the debounce).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	if reg == nil {
		return m, nil
	}
	// A reload that changes the watched services replaces the Source; the new one takes over
	// the collectors the first registered, so the series continue rather than fail to register.
	var err error
	reuse(reg, &m.published, &err)
	reuse(reg, &m.lastSnapshot, &err)
	reuse(reg, &m.serviceStatus, &err)
	reuse(reg, &m.backoff, &err)
	reuse(reg, &m.resets, &err)
	reuse(reg, &m.valveActive, &err)
	reuse(reg, &m.valveHeld, &err)
	reuse(reg, &m.latency, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// reuse registers *c with reg, or replaces *c by the collector already registered under its
// name. The first error is kept in *errp.
func reuse[C prometheus.Collector](reg prometheus.Registerer, c *C, errp *error) {
	err := reg.Register(*c)
	if err == nil {
		return
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return
		}
	}
	if *errp == nil {
		*errp = fmt.Errorf("kube: registering metrics: %w", err)
	}
}

// forgetStatus drops the status series of ref (a service port a reload stopped watching).
func (m *metrics) forgetStatus(ref ServiceRef) {
	m.serviceStatus.DeletePartialMatch(prometheus.Labels{"namespace": ref.Namespace, "service": ref.Service, "port_name": ref.PortName})
}

// setStatus moves a service's status series to cur. Any other status series of the ref is
// deleted, not only this Source's previous one (old): a Source that replaced another on a
// reload shares the collector, and the other's last status must not stay beside ours.
func (m *metrics) setStatus(ref ServiceRef, old, cur Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live {
		if old != cur || m.status[ref] != cur {
			m.forgetStatus(ref)
		}
		m.serviceStatus.WithLabelValues(ref.Namespace, ref.Service, ref.PortName, string(cur)).Set(1)
	}
	m.status[ref] = cur
}

// setBackoff records a watch's current back-off.
func (m *metrics) setBackoff(resource, namespace string, seconds float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.backoffs[[2]string{resource, namespace}] = seconds
	if m.live {
		m.backoff.WithLabelValues(resource, namespace).Set(seconds)
	}
}

// reset counts a watch reset. A standby Source's resets are not counted: its failures are
// logged, and it only ever matters once it synced.
func (m *metrics) reset(resource, namespace, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live {
		m.resets.WithLabelValues(resource, namespace, reason).Inc()
	}
}

// publishedSnapshot records a publish at now (Unix seconds) and the safety valve's state.
func (m *metrics) publishedSnapshot(now float64, stale bool, held int, latency float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastAt, m.stale, m.held = now, stale, held
	if !m.live {
		return
	}
	m.published.Inc()
	m.writeSnapshotLocked()
	if latency >= 0 {
		m.latency.Observe(latency)
	}
}

func (m *metrics) writeSnapshotLocked() {
	m.lastSnapshot.Set(m.lastAt)
	if m.stale {
		m.valveActive.Set(1)
	} else {
		m.valveActive.Set(0)
	}
	m.valveHeld.Set(float64(m.held))
}

// deactivate stops the writes of a Source that is being replaced.
func (m *metrics) deactivate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live = false
}

// activate makes the shared series this Source's: the status series of replaced (the refs of
// the Source it replaces, stopped by now) are dropped, and everything this Source kept while on
// standby is written.
func (m *metrics) activate(replaced []ServiceRef) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live = true
	for _, r := range replaced {
		m.forgetStatus(r)
	}
	for r, st := range m.status {
		m.forgetStatus(r)
		m.serviceStatus.WithLabelValues(r.Namespace, r.Service, r.PortName, string(st)).Set(1)
	}
	m.backoff.Reset() // the replaced Source's namespaces may be gone
	for k, v := range m.backoffs {
		m.backoff.WithLabelValues(k[0], k[1]).Set(v)
	}
	if m.lastAt > 0 {
		m.writeSnapshotLocked()
	}
}
