package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ravel-lb/ravel/config"
)

// scaleConfig is bench/scale.sh's config: vips × ports static services × dests backends.
func scaleConfig(vips, ports, dests int) string {
	var b strings.Builder
	b.WriteString("apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: bench, role: director, interface: eth0, vipInterface: ravel0}\nvipPool: [")
	for v := range vips {
		if v > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "10.100.%d.%d", v/250, v%250+1)
	}
	b.WriteString("]\ndefaults: {ipvs: {scheduler: wrr, forwarding: dr}}\nservices:\n")
	for v := range vips {
		for p := range ports {
			fmt.Fprintf(&b, "  - {name: s%d-%d, vip: 10.100.%d.%d, port: %d, backends: [", v, 1000+p, v/250, v%250+1, 1000+p)
			for d := 1; d <= dests; d++ {
				if d > 1 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "{address: 10.1.%d.%d, weight: %d}", d/250, d%250, (v+p+d)%3+1)
			}
			b.WriteString("]}\n")
		}
	}
	b.WriteString("resync: 1h\n")
	return b.String()
}

// BenchmarkDirectorHeap: the live heap, after GC, of a director that programmed 1,000 and
// 10,000 services × 20 destinations (bench/scale.sh's set) on the netops fakes: all of it, and
// ravel's own share (the heap once the director and its config are dropped while the fakes,
// which hold the table as the kernel would, stay is subtracted): what ravel keeps per service.
// RAVEL_HEAP_PROFILE=FILE writes a heap profile of the first.
func BenchmarkDirectorHeap(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "ravel.yaml")
			if err := os.WriteFile(path, []byte(scaleConfig(n/100, 100, 20)), 0o644); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				base := liveHeap()
				cfg, err := config.Load(path)
				if err != nil {
					b.Fatal(err)
				}
				f := newFakes()
				m := NewMetrics(prometheus.NewRegistry())
				d := NewDirector(cfg, nodeOf(cfg), f.kernel(), nil, discard, m)
				ctx, cancel := context.WithCancel(context.Background())
				ran := make(chan struct{})
				go func() { _ = d.Run(ctx, nil); close(ran) }()
				for testutil.ToFloat64(m.LastSync) == 0 { // set once the first sync's plan is applied
					time.Sleep(50 * time.Millisecond)
				}
				withDirector := liveHeap()
				if p := os.Getenv("RAVEL_HEAP_PROFILE"); p != "" {
					fh, err := os.Create(p)
					if err != nil {
						b.Fatal(err)
					}
					if err := pprof.WriteHeapProfile(fh); err != nil {
						b.Fatal(err)
					}
					fh.Close()
				}
				cancel()
				<-ran
				d, cfg = nil, nil
				fakesOnly := liveHeap() // the fakes, still referenced, hold the kernel's table
				runtime.KeepAlive(f)
				b.ReportMetric(float64(withDirector-base)/(1<<20), "MiB-live-all")
				b.ReportMetric(float64(withDirector-fakesOnly)/(1<<20), "MiB-live-ravel")
				b.ReportMetric(float64(withDirector-fakesOnly)/float64(n), "B/service")
			}
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
