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

// BenchmarkReloadOneWeight: the whole reload path on the netops fakes — read the file, load and
// validate it with the config.Cache of the previous load (as ravel run does), check
// restart-only fields, sync by diff against what the last sync committed — when one weight
// changed among n services of bench/scale.sh's set (20 destinations each). One op = one
// reload. The parse-only baseline, run beside it, is what `ravel config validate` spends on
// the same file (no cache).
func BenchmarkReloadOneWeight(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		text := scaleConfig(n/100, 100, 20)
		edited := strings.Replace(text, "{address: 10.1.0.1, weight: ", "{address: 10.1.0.1, weight: 9", 1)
		b.Run(fmt.Sprintf("services=%d/parse-only", n), func(b *testing.B) {
			data := []byte(text)
			for b.Loop() {
				if _, err := config.Parse("b.yaml", data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("services=%d/reload", n), func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "ravel.yaml")
			texts := [2]string{text, edited}
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
			r := &Reloader{Path: path, Parse: cache.Parse, Log: slog.New(slog.DiscardHandler), Metrics: m, Status: NewStatus("b", cfg), StartData: cache.Bytes(path), Read: cache.ReadFile,
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
