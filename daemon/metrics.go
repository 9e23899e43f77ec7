package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the director's Prometheus metrics.
type Metrics struct {
	Syncs            *prometheus.CounterVec // result: ok|error; kind: full|partial
	SyncDuration     prometheus.Histogram
	Ops              *prometheus.CounterVec // kind of op applied
	ApplyErrors      prometheus.Counter
	ThresholdClamped prometheus.Counter
	NoRealservers    prometheus.Gauge
	VirtualServices  prometheus.Gauge
	Destinations     prometheus.Gauge
	VIPs             prometheus.Gauge
	Draining         prometheus.Gauge
	GARPSent         prometheus.Counter
	GARPErrors       prometheus.Counter
	LastSync         prometheus.Gauge
	RoleActive       prometheus.Gauge
	Failovers        prometheus.Counter
	ChainWrites      prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ravel_reconcile_total",
			Help: "Reconcile cycles, by kind (full: read the whole kernel state; partial: only changed services) and result."}, []string{"kind", "result"}),
		SyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ravel_reconcile_duration_seconds",
			Help: "Time of one reconcile cycle: read, desired, diff and apply.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		Ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ravel_plan_ops_total",
			Help: "Kernel operations applied, by kind."}, []string{"kind"}),
		ApplyErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_apply_errors_total",
			Help: "Operations the kernel refused; each schedules a full resync."}),
		ThresholdClamped: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_threshold_clamped_total",
			Help: "Services whose per-realserver threshold share exceeded 65535 and was clamped, per desired-state computation."}),
		NoRealservers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_services_without_realservers",
			Help: "Virtual services whose destinations all have weight 0 (VIP kept, no traffic served)."}),
		VirtualServices: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_virtual_services",
			Help: "IPVS virtual services ravel wants."}),
		Destinations: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_destinations",
			Help: "IPVS destinations ravel wants, over all virtual services."}),
		VIPs: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_vips_bound",
			Help: "VIPs ravel wants bound on its VIP interface."}),
		Draining: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_destinations_draining",
			Help: "Destinations at weight 0 waiting for their connections to end or the drain timeout."}),
		GARPSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_garp_sent_total",
			Help: "Gratuitous ARP announcements sent."}),
		GARPErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_garp_errors_total",
			Help: "Gratuitous ARP announcements that failed."}),
		LastSync: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_last_successful_reconcile_timestamp_seconds",
			Help: "Unix time of the last reconcile that applied without error."}),
		RoleActive: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_realserver_role_active",
			Help: "1 while the realserver role is programming this node (with a coordinator: the director is gone)."}),
		Failovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_realserver_failovers_total",
			Help: "Times the realserver role started because the director stopped answering."}),
		ChainWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_iptables_batches_total",
			Help: "iptables-restore batches applied to ravel's chains."}),
	}
	if reg != nil {
		reg.MustRegister(m.Syncs, m.SyncDuration, m.Ops, m.ApplyErrors, m.ThresholdClamped, m.NoRealservers,
			m.VirtualServices, m.Destinations, m.VIPs, m.Draining, m.GARPSent, m.GARPErrors, m.LastSync,
			m.RoleActive, m.Failovers, m.ChainWrites)
	}
	return m
}
