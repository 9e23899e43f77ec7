package kube

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/kubeobj"
)

// BenchmarkStep is the Source's own share of an update, without an API server: one
// EndpointSlice (100 endpoints) changes in the cache (transform, index), then one step
// resolves it and publishes the snapshot (a copy of the services map, so it grows with the
// number of services).
//
//	go test ./kube -run '^$' -bench BenchmarkStep
func BenchmarkStep(b *testing.B) {
	for _, services := range []int{1, 1000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			f := &fixture{ns: "ns"}
			for i := range 20 {
				f.nodes = append(f.nodes, fmt.Sprintf("n%d", i))
			}
			opts := Options{Logger: slog.New(slog.DiscardHandler)}
			for i := range services {
				opts.Refs = append(opts.Refs, ServiceRef{Namespace: "ns", Service: fmt.Sprintf("svc-%d", i), PortName: "http", Family: family.IPv4})
			}
			s, err := newSource(nil, opts)
			if err != nil {
				b.Fatal(err)
			}
			var svcs, eps []any
			for i := range services {
				svcs = append(svcs, kubeobj.Service("ns", fmt.Sprintf("svc-%d", i), kubeobj.WithPort("http", 80, 8080)))
				eps = append(eps, benchSlice(f, i, 5, 0))
			}
			_ = s.nodes.Replace(nil, "1")
			_ = s.services["ns"].Replace(svcs, "1")
			_ = s.slices["ns"].Replace(eps, "1")
			s.loop.holds = map[ServiceRef]*hold{}
			now := time.Now()
			s.step(now)
			<-s.out
			alt := []any{benchSlice(f, 0, 5, 1), benchSlice(f, 0, 5, 2)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				_ = s.slices["ns"].Update(alt[i%2])
				s.step(now)
				<-s.out
			}
		})
	}
}
