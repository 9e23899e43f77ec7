package daemon

import (
	"encoding/hex"
	"net/netip"
	"sync"
	"time"

	"github.com/ravel-lb/ravel/config"
)

// SetDraining records whether the realserver answers "draining".
func (s *Status) SetDraining(d bool) {
	s.mu.Lock()
	s.r.Draining = d
	s.mu.Unlock()
}

// SetARPProblem records why the director does not answer ARP for its VIPs ("" when it does).
func (s *Status) SetARPProblem(p string) {
	s.mu.Lock()
	s.r.ARPProblem = p
	s.mu.Unlock()
}

// SetRules records where the node's rules to its own pods go ("iptables (nf_tables)",
// "nftables (table inet ravel)").
func (s *Status) SetRules(r string) {
	s.mu.Lock()
	s.r.Rules = r
	s.mu.Unlock()
}

// SetIPTablesProblem records an iptables backend mismatch ("" when none).
func (s *Status) SetIPTablesProblem(p string) {
	s.mu.Lock()
	s.r.IPTablesProblem = p
	s.mu.Unlock()
}

// SetAnnounced records the VIPs the bgp role announces, and those it withholds with why.
func (s *Status) SetAnnounced(vips []netip.Addr, withheld []WithheldVIP, drained bool) {
	s.mu.Lock()
	s.r.Announced, s.r.Withheld, s.r.BGPDrained = vips, withheld, drained
	s.mu.Unlock()
}

// WithheldVIP is a VIP of the config that the bgp role does not announce, and why.
type WithheldVIP struct {
	VIP    netip.Addr `json:"vip"`
	Reason string     `json:"reason"`
}

// SetBGPPeers records the BGP sessions.
func (s *Status) SetBGPPeers(p []PeerReport) {
	s.mu.Lock()
	s.r.BGPPeers = p
	s.mu.Unlock()
}

// SetHealth records the director's unhealthy backends and held services.
func (s *Status) SetHealth(unhealthy []UnhealthyBackend, held []string) {
	s.mu.Lock()
	s.r.Unhealthy, s.r.HealthHold = unhealthy, held
	s.mu.Unlock()
}

// Report is what /status serves and `ravel status` prints: the running config, the last reload
// and its findings, the last sync and its plan summary, and counts.
type Report struct {
	Version string `json:"version"`
	Node    string `json:"node"`
	Role    string `json:"role"`
	// Ready mirrors /readyz; NotReady says why not.
	Ready    bool   `json:"ready"`
	NotReady string `json:"notReady,omitempty"`
	// NodeProblem says why this node's own services cannot be served: its name is not in the
	// Kubernetes snapshot (realserver role). It also makes /readyz not ready.
	NodeProblem string `json:"nodeProblem,omitempty"`

	Config     ConfigReport  `json:"config"`
	LastReload *ReloadReport `json:"lastReload,omitempty"`
	LastSync   *SyncReport   `json:"lastSync,omitempty"`
	// LastSuccessfulSync is the end of the last sync that applied without error.
	LastSuccessfulSync time.Time `json:"lastSuccessfulSync,omitzero"`
	Counts             Counts    `json:"counts"`
	// Snapshot is when the Kubernetes snapshot in use was received (zero without Kubernetes).
	Snapshot time.Time `json:"snapshot,omitzero"`
	// DirectorPresent is the realserver's view of the coordinator (nil on a director).
	DirectorPresent *bool `json:"directorPresent,omitempty"`
	// RealserverActive says whether the realserver role is programming this node.
	RealserverActive bool `json:"realserverActive"`
	// Draining is set while a realserver answers its health checks with draining.
	Draining bool `json:"draining,omitempty"`
	// Unhealthy lists what fails its health checks on a director: the reason and since when.
	Unhealthy []UnhealthyBackend `json:"unhealthy,omitempty"`
	// ARPProblem says why a director does not answer ARP for its VIPs (arp_ignore set by
	// someone else). It does not make /readyz fail: the VIPs still forward.
	ARPProblem string `json:"arpProblem,omitempty"`
	// Rules says which backend holds the rules to this node's own pods (realserver, colocated
	// director), "" when there is none.
	Rules string `json:"rules,omitempty"`
	// IPTablesProblem says kube-proxy's chains are in the other iptables backend.
	IPTablesProblem string `json:"iptablesProblem,omitempty"`
	// Announced are the VIPs the bgp role announces; BGPDrained says an operator withdrew all.
	Announced  []netip.Addr  `json:"announced,omitempty"`
	Withheld   []WithheldVIP `json:"withheld,omitempty"`
	BGPDrained bool          `json:"bgpDrained,omitempty"`
	BGPPeers   []PeerReport  `json:"bgpPeers,omitempty"`
	// HealthHold lists the services under the all-failing hold.
	HealthHold []string `json:"healthHold,omitempty"`
}

// ConfigReport identifies the running config.
type ConfigReport struct {
	Path     string    `json:"path"`
	Hash     string    `json:"hash"` // SHA-256 of the file's bytes, hex
	LoadedAt time.Time `json:"loadedAt"`
	Warnings int       `json:"warnings"`
}

// ReloadReport is the outcome of the last reload attempt.
type ReloadReport struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"` // file or signal
	// Result is ok, unchanged, invalid (the file did not load), restart-required, or failed
	// (the running role refused it). Only ok changes the running config.
	Result   string           `json:"result"`
	Error    string           `json:"error,omitempty"`
	Findings []config.Finding `json:"findings,omitempty"`
}

// SyncReport is the outcome of the last reconcile cycle.
type SyncReport struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"` // full, partial, realserver
	Result   string    `json:"result"`
	Duration string    `json:"duration"`
	Plan     string    `json:"plan"` // one-line summary
	Error    string    `json:"error,omitempty"`
}

// Counts are what the last full sync wanted.
type Counts struct {
	VirtualServices            int `json:"virtualServices"`
	Destinations               int `json:"destinations"`
	VIPs                       int `json:"vips"`
	Draining                   int `json:"draining"`
	ServicesWithoutRealservers int `json:"servicesWithoutRealservers"`
}

// Status is the daemon's shared state for /status, /readyz and systemd readiness. The roles
// write it; HTTP handlers read it; every method is safe for concurrent use.
type Status struct {
	now func() time.Time

	mu         sync.Mutex // guards everything below
	r          Report
	staleAfter time.Duration
	standbyAt  time.Time // last time a realserver saw its director (standing by is healthy)
	synced     chan struct{}
	syncedDone bool
}

// NewStatus returns the status of a daemon that runs cfg. staleAfter is how old the last good
// sync may be before /readyz fails (see StaleAfter).
func NewStatus(version string, cfg *config.Config) *Status {
	s := &Status{now: time.Now, synced: make(chan struct{})}
	s.r.Version = version
	s.setConfigLocked(cfg)
	return s
}

// StaleAfter is how long without a successful sync a daemon stays ready: three full resync
// periods and 30 s of slack (a resync under load can take seconds).
func StaleAfter(cfg *config.Config) time.Duration { return 3*cfg.Resync.D() + 30*time.Second }

func (s *Status) setConfigLocked(cfg *config.Config) {
	s.r.Node, s.r.Role = cfg.Node.Name, cfg.Node.Role
	s.r.Config = ConfigReport{Path: cfg.File, Hash: hex.EncodeToString(cfg.Hash[:]), LoadedAt: s.now(), Warnings: len(cfg.Warnings)}
	s.staleAfter = StaleAfter(cfg)
}

// SetConfig records a newly running config.
func (s *Status) SetConfig(cfg *config.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setConfigLocked(cfg)
}

// RecordReload records a reload attempt.
func (s *Status) RecordReload(r ReloadReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.LastReload = &r
}

// RecordSync records a reconcile cycle; a successful one counts for readiness.
func (s *Status) RecordSync(r SyncReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.LastSync = &r
	if r.Result == "ok" {
		s.r.LastSuccessfulSync = r.Time
		s.markSyncedLocked()
	}
}

// SetCounts records what the last full sync wanted.
func (s *Status) SetCounts(c Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.Counts = c
}

// SetSnapshot records when the snapshot in use was received.
func (s *Status) SetSnapshot(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.Snapshot = t
}

// SnapshotAge is the age of the snapshot in use, 0 before the first (or without Kubernetes).
func (s *Status) SnapshotAge() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r.Snapshot.IsZero() {
		return 0
	}
	return s.now().Sub(s.r.Snapshot)
}

// SetCoordinator records a realserver's view: whether the director answers and whether the
// realserver role is active. A realserver standing by for a present director is healthy, so
// it counts as synced.
func (s *Status) SetCoordinator(directorPresent, realserverActive bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.DirectorPresent = &directorPresent
	s.r.RealserverActive = realserverActive
	if directorPresent && !realserverActive {
		s.standbyAt = s.now()
		s.markSyncedLocked()
	}
}

func (s *Status) markSyncedLocked() {
	if !s.syncedDone {
		s.syncedDone = true
		close(s.synced)
	}
}

// Synced is closed after the first successful sync (or, on a realserver, the first time it
// stands by for its director): systemd's READY=1.
func (s *Status) Synced() <-chan struct{} { return s.synced }

// SetNodeProblem records why this node's services cannot be served ("" when they can).
func (s *Status) SetNodeProblem(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.NodeProblem = p
}

// Ready reports readiness: a config is loaded (always, once the daemon runs), the first sync is
// done, and the last successful one (or the last standby check) is recent.
func (s *Status) Ready() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyLocked()
}

func (s *Status) readyLocked() (bool, string) {
	if !s.syncedDone {
		return false, "first sync not done yet"
	}
	if s.r.NodeProblem != "" {
		return false, s.r.NodeProblem
	}
	last := s.r.LastSuccessfulSync
	if s.standbyAt.After(last) {
		last = s.standbyAt
	}
	if age := s.now().Sub(last); age > s.staleAfter {
		return false, "last successful sync is " + age.Round(time.Second).String() + " old (limit " + s.staleAfter.String() + ")"
	}
	return true, ""
}

// Report returns a copy of the current report.
func (s *Status) Report() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.r
	r.Ready, r.NotReady = s.readyLocked()
	if s.r.LastReload != nil {
		lr := *s.r.LastReload
		r.LastReload = &lr
	}
	if s.r.LastSync != nil {
		ls := *s.r.LastSync
		r.LastSync = &ls
	}
	return r
}
