package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the director's Prometheus metrics.
type Metrics struct {
	Syncs            *prometheus.CounterVec // result: ok|error; kind: full|partial|reload
	SyncDuration     prometheus.Histogram
	Ops              *prometheus.CounterVec // kind of op applied
	ApplyErrors      prometheus.Counter
	ApplyRetries     prometheus.Counter
	ThresholdClamped prometheus.Counter
	NoRealservers    prometheus.Gauge
	VirtualServices  prometheus.Gauge
	Destinations     prometheus.Gauge
	VIPs             prometheus.Gauge
	Draining         prometheus.Gauge
	GARPSent         prometheus.Counter
	GARPErrors       prometheus.Counter
	NDPSent          prometheus.Counter
	NDPErrors        prometheus.Counter
	NDPAnswered      prometheus.Counter
	LastSync         prometheus.Gauge
	RoleActive       prometheus.Gauge
	Failovers        prometheus.Counter
	ChainWrites      prometheus.Counter
	IPTablesDuration prometheus.Histogram
	IPTablesErrors   prometheus.Counter
	// NFTDuration, NFTTransactions, NFTErrors and NFTDrift are the nftables backend's.
	NFTDuration     prometheus.Histogram
	NFTTransactions *prometheus.CounterVec
	NFTErrors       prometheus.Counter
	NFTDrift        prometheus.Counter
	DirectorPresent prometheus.Gauge
	// Per VIP of the desired state; a VIP's series are deleted when it leaves the config.
	VIPServices *prometheus.GaugeVec
	VIPDests    *prometheus.GaugeVec

	// Health checks (director) and the health endpoint (realserver).
	BackendUp           *prometheus.GaugeVec // service, backend
	HealthCheckDuration prometheus.Histogram
	HealthTransitions   *prometheus.CounterVec // service, backend, to
	HealthInFlight      prometheus.Gauge
	HealthHold          prometheus.Gauge
	RealserverDraining  prometheus.Gauge // realserver: 1 while answering "draining"
	ARPConflict         prometheus.Gauge
	BGPAnnounced        prometheus.Gauge
	BGPPeerUp           *prometheus.GaugeVec   // peer
	BGPPeerState        *prometheus.GaugeVec   // peer, state
	BGPUpdates          *prometheus.CounterVec // kind: announce, withdraw
	// IPTablesBackendMismatch is 1 while kube-proxy's chains are in the other backend only.
	IPTablesBackendMismatch prometheus.Gauge

	// Config reloads.
	ReloadOK       prometheus.Gauge
	ReloadOKTime   prometheus.Gauge
	Reloads        *prometheus.CounterVec // trigger, result
	ConfigInfo     *prometheus.GaugeVec   // hash of the running config
	Normalizations *prometheus.GaugeVec   // field
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ravel_reconcile_total",
			Help: "Reconcile cycles, by kind (full: read the whole kernel state; partial: only the services a Kubernetes or health change touched; reload: only what a config reload changed) and result."}, []string{"kind", "result"}),
		SyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ravel_reconcile_duration_seconds",
			Help: "Time of one reconcile cycle: read, desired, diff and apply.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		Ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ravel_plan_ops_total",
			Help: "Kernel operations applied, by kind."}, []string{"kind"}),
		ApplyRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_apply_retries_total",
			Help: "Full syncs run to retry a failed apply (backing off from 1s to 30s while it keeps failing)."}),
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
		NDPSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_ndp_advertisements_total",
			Help: "Unsolicited neighbour advertisements sent for IPv6 VIPs."}),
		NDPErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_ndp_errors_total",
			Help: "Neighbour advertisements that failed, and failures to start answering solicitations."}),
		NDPAnswered: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_ndp_solicitations_answered_total",
			Help: "Neighbour solicitations for IPv6 VIPs answered (the kernel does not answer for addresses on the dummy device)."}),
		LastSync: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_last_successful_reconcile_timestamp_seconds",
			Help: "Unix time of the last reconcile that applied without error."}),
		RoleActive: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_realserver_role_active",
			Help: "1 while the realserver role is programming this node (with a coordinator: the director is gone)."}),
		Failovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_realserver_failovers_total",
			Help: "Times the realserver role started because the director stopped answering."}),
		ChainWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_iptables_batches_total",
			Help: "iptables-restore batches applied to ravel's chains."}),
		IPTablesDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ravel_iptables_apply_duration_seconds",
			Help: "Time of one iptables apply of ravel's chains (read, diff, iptables-restore).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		IPTablesErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_iptables_apply_errors_total",
			Help: "iptables applies of ravel's chains that failed."}),
		NFTDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ravel_nftables_apply_duration_seconds",
			Help: "Time of one apply of ravel's nftables table (a partial transaction, or a resync's read and full rewrite).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		NFTTransactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ravel_nftables_transactions_total",
			Help: "nft transactions sent to ravel's table, by kind: partial (only what changed) or full (the whole table: start, resync, after a failure)."}, []string{"kind"}),
		NFTErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_nftables_apply_errors_total",
			Help: "nftables applies that failed (nft refused the transaction, which then changed nothing)."}),
		NFTDrift: prometheus.NewCounter(prometheus.CounterOpts{Name: "ravel_nftables_drift_total",
			Help: "Resyncs that found ravel's nftables table different from what ravel committed (then rewrote it)."}),
		DirectorPresent: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_coordinator_director_present",
			Help: "1 while the director answers on its coordinator port (on a director: 1 while it listens)."}),
		VIPServices: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ravel_vip_virtual_services",
			Help: "IPVS virtual services ravel wants on each VIP."}, []string{"vip"}),
		VIPDests: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ravel_vip_serving_destinations",
			Help: "Destinations with a weight above 0 over the virtual services of each VIP."}, []string{"vip"}),
		BackendUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ravel_backend_up",
			Help: "1 while a checked backend passes its health check, 0 while it fails (weight 0). Realserver nodes have service \"*\"; a node's service it says it does not serve has the service's vip:port."}, []string{"service", "backend"}),
		HealthCheckDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ravel_health_check_duration_seconds",
			Help: "Time of one health check (node view, tcp or http), failed ones included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		HealthTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ravel_health_transitions_total",
			Help: "Health state changes of checked backends, by the state reached (up, down)."}, []string{"service", "backend", "to"}),
		HealthInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_health_checks_in_flight",
			Help: "Health checks running now (bounded by health.maxInFlight)."}),
		HealthHold: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_health_hold_services",
			Help: "Services whose every realserver fails its check, kept at their last healthy weights instead of emptied."}),
		RealserverDraining: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_realserver_draining",
			Help: "1 while this realserver answers its health checks with draining (stopping, or standing down)."}),
		ARPConflict: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_arp_ignore_conflict",
			Help: "Director: arp_ignore keys (conf/all, node.interface) above 0 that ravel did not set; while above 0 the director does not answer ARP for its VIPs."}),
		IPTablesBackendMismatch: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_iptables_backend_mismatch",
			Help: "1 while kube-proxy's KUBE-SERVICES is in the other iptables backend (legacy vs nf_tables) only: ravel's rules never come first."}),
		BGPAnnounced: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_bgp_announced_prefixes",
			Help: "VIPs (/32 and /128 routes) the bgp role announces now: those with a healthy destination of weight above 0, none while drained."}),
		BGPPeerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ravel_bgp_peer_up",
			Help: "1 while the BGP session with the peer is established."}, []string{"peer"}),
		BGPPeerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ravel_bgp_peer_state",
			Help: "1 for the BGP session's current state (idle, connect, active, opensent, openconfirm, established)."}, []string{"peer", "state"}),
		BGPUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ravel_bgp_updates_sent_total",
			Help: "Routes the bgp role handed its speaker to send to every established peer, by kind (announce, withdraw); a re-announcement with new attributes counts as announce."}, []string{"kind"}),
		ReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_config_last_reload_successful",
			Help: "1 if the last config load or reload was applied, 0 if it was refused (the previous config keeps running)."}),
		ReloadOKTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ravel_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful config load or reload."}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ravel_config_reloads_total",
			Help: "Config reload attempts by trigger (file, signal) and result (ok, invalid, restart-required, failed)."}, []string{"trigger", "result"}),
		ConfigInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ravel_config_info",
			Help: "1, labelled with the SHA-256 of the running config file and its path."}, []string{"hash", "path"}),
		Normalizations: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ravel_config_normalizations",
			Help: "Normalizations (warnings) in the running config, by field (list indices removed)."}, []string{"field"}),
	}
	if reg != nil {
		reg.MustRegister(m.Syncs, m.SyncDuration, m.Ops, m.ApplyErrors, m.ApplyRetries, m.ThresholdClamped, m.NoRealservers,
			m.VirtualServices, m.Destinations, m.VIPs, m.Draining, m.GARPSent, m.GARPErrors, m.NDPSent, m.NDPErrors, m.NDPAnswered, m.LastSync,
			m.RoleActive, m.Failovers, m.ChainWrites, m.IPTablesDuration, m.IPTablesErrors, m.NFTDuration, m.NFTTransactions, m.NFTErrors, m.NFTDrift, m.DirectorPresent,
			m.VIPServices, m.VIPDests, m.ReloadOK, m.ReloadOKTime, m.Reloads, m.ConfigInfo, m.Normalizations,
			m.BackendUp, m.HealthCheckDuration, m.HealthTransitions, m.HealthInFlight, m.HealthHold, m.RealserverDraining, m.ARPConflict, m.IPTablesBackendMismatch, m.BGPAnnounced, m.BGPPeerUp, m.BGPPeerState, m.BGPUpdates)
	}
	return m
}
