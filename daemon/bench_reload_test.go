package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ravel-lb/ravel/config"
)

// staticConfig is a director config of n static services with 4 backends each; the first
// backend of service 0 has weight w.
func staticConfig(n, w int) string {
	var b strings.Builder
	b.WriteString("apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: d1, role: director, vipInterface: ravel0}\nvipPool: [")
	vips := (n + 999) / 1000
	for v := range vips {
		if v > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "10.60.%d.1", v)
	}
	b.WriteString("]\nservices:\n")
	for i := range n {
		weight := 1
		if i == 0 {
			weight = w
		}
		fmt.Fprintf(&b, "  - {vip: 10.60.%d.1, port: %d, backends: [{address: 10.1.0.1, weight: %d}, {address: 10.1.0.2}, {address: 10.1.0.3}, {address: 10.1.0.4}]}\n",
			i/1000, 1+i%1000, weight)
	}
	return b.String()
}

// BenchmarkReloadOneWeight: the whole reload path on the netops fakes — read the file, load and
// validate it with the config.Cache of the previous load (as ravel run does), check
// restart-only fields, sync by diff against what the last sync committed — when one weight
// changed among n services. One op = one reload. The parse-only baseline, run beside it, is
// what `ravel config validate` spends on the same file (no cache).
func BenchmarkReloadOneWeight(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d/parse-only", n), func(b *testing.B) {
			data := []byte(staticConfig(n, 2))
			for b.Loop() {
				if _, err := config.Parse("b.yaml", data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("services=%d/reload", n), func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "ravel.yaml")
			texts := [2]string{staticConfig(n, 2), staticConfig(n, 3)}
			if err := os.WriteFile(path, []byte(texts[0]), 0o644); err != nil {
				b.Fatal(err)
			}
			cache := &config.Cache{} // as ravel run keeps one
			cfg, err := cache.Load(path)
			if err != nil {
				b.Fatal(err)
			}
			f := newFakes()
			m := NewMetrics(prometheus.NewRegistry())
			d := NewDirector(cfg, nodeOf(cfg), f.kernel(), nil, discard, m)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = d.Run(ctx, nil) }()
			r := &Reloader{Path: path, Parse: cache.Parse, Log: slog.New(slog.DiscardHandler), Metrics: m, Status: NewStatus("b", cfg),
				Apply: func(ctx context.Context, _, c *config.Config) error { return d.Reload(ctx, c) }}
			r.Start(cfg)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				if err := os.WriteFile(path, []byte(texts[(i+1)%2]), 0o644); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if res, err := r.Reload(ctx, TriggerFile); res != ReloadOK {
					b.Fatalf("reload: %s %v", res, err)
				}
			}
		})
	}
}
