package soak

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sample is one row of the soak's table: what had happened by then, and the process's
// resources measured right after a GC, with the churn paused and the director caught up.
type sample struct {
	at         time.Duration // since the churn started
	changes    int           // EndpointSlice updates written
	snapshots  float64       // ravel_kube_snapshots_published_total
	partial    float64       // ravel_reconcile_total{kind="partial"}
	full       float64       // ravel_reconcile_total{kind="full"}
	ipvsOps    int           // mutating calls on the fake IPVS (all samples so far)
	goroutines int
	heap       uint64 // live heap after GC, bytes
	fds        int    // entries of /proc/self/fd
}

// measure fills in the resources: it runs a GC and reads the live heap it marked.
func (s *sample) measure() error {
	runtime.GC()
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindUint64 {
		return fmt.Errorf("runtime/metrics has no %s", m[0].Name)
	}
	s.heap = m[0].Value.Uint64()
	s.goroutines = runtime.NumGoroutine()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	s.fds = len(fds) // includes the one ReadDir opened: the same in every sample
	return nil
}

// readMetrics fills in the director's counters from its registry.
func (s *sample) readMetrics(reg prometheus.Gatherer) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	s.snapshots = sum(mfs, "ravel_kube_snapshots_published_total", nil)
	s.partial = sum(mfs, "ravel_reconcile_total", map[string]string{"kind": "partial"})
	s.full = sum(mfs, "ravel_reconcile_total", map[string]string{"kind": "full"})
	return nil
}

// sum adds up the counter or gauge values of the series of family name whose labels include
// match.
func sum(mfs []*dto.MetricFamily, name string, match map[string]string) float64 {
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range match {
				if labels[k] != v {
					continue series
				}
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

const tableHeader = "  elapsed  changes  snapshots  syncs(partial/full)  ipvs_ops  goroutines  heap_MiB  fds"

func (s sample) row(note string) string {
	return strings.TrimRight(fmt.Sprintf("%9s  %7d  %9.0f  %19s  %8d  %10d  %8.1f  %3d  %s",
		s.at.Round(time.Second), s.changes, s.snapshots, fmt.Sprintf("%.0f/%.0f", s.partial, s.full),
		s.ipvsOps, s.goroutines, mib(s.heap), s.fds, note), " ")
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
