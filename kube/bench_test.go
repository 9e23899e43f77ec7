package kube

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/kapitest"
	"github.com/ravel-lb/ravel/internal/kubeobj"
	"github.com/ravel-lb/ravel/internal/parallel"
)

// Benchmarks against the real kube-apiserver started by TestMain:
//
//	go test ./kube -run '^$' -bench . -benchtime 300x
//
// BenchmarkUpdateToSnapshot: an EndpointSlice update written to the API server (clock started
// before the write) until the snapshot that shows it is published, debounce off, with 1 and
// with 1,000 configured services (all watched). BenchmarkSourceHeap: heap in use by a Source
// that holds 1,000 services over 20 nodes, after GC (KUBE_HEAP_PROFILE=file also writes a heap
// profile at that point).

// fixture is a namespace holding services svc-0..svc-N-1, each with one EndpointSlice, over
// nodes of its own. Fixtures are built once per process (the benchmark function runs more than
// once) and never deleted.
type fixture struct {
	ns    string
	nodes []string
	refs  []ServiceRef
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*fixture{}
)

// getFixture builds (once) services × nodes with epsPerNode ready endpoints per node and
// service.
func getFixture(b *testing.B, srv *kapitest.Server, services, nodes, epsPerNode int) *fixture {
	b.Helper()
	key := fmt.Sprintf("%d/%d/%d", services, nodes, epsPerNode)
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f := fixtures[key]; f != nil {
		return f
	}
	start := time.Now()
	c := srv.Client()
	ctx := context.Background()
	f := &fixture{ns: srv.Namespace(b)}
	for i := range nodes {
		name := fmt.Sprintf("%s-n%d", f.ns, i)
		f.nodes = append(f.nodes, name)
		n := kubeobj.Node(name, kubeobj.WithNodeIP(fmt.Sprintf("192.0.%d.%d", 100+i/250, 1+i%250)),
			kubeobj.WithLabels(map[string]string{"ravel-lb": f.ns}), kubeobj.Ready(true))
		if _, err := c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	err := parallel.Do(services, 16, func(i int) error {
		name := fmt.Sprintf("svc-%d", i)
		if _, err := c.CoreV1().Services(f.ns).Create(ctx, kubeobj.Service(f.ns, name, kubeobj.WithPort("http", 80, 8080)), metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err := c.DiscoveryV1().EndpointSlices(f.ns).Create(ctx, benchSlice(f, i, epsPerNode, 0), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := range services {
		f.refs = append(f.refs, ServiceRef{Namespace: f.ns, Service: fmt.Sprintf("svc-%d", i), PortName: "http", Family: family.IPv4})
	}
	b.Logf("fixture %s: %d services, %d nodes, %d endpoints per node and service, built in %v",
		key, services, nodes, epsPerNode, time.Since(start).Round(time.Millisecond))
	fixtures[key] = f
	return f
}

// benchSlice is service i's slice; gen varies the last endpoint's port so that each update
// is visible in the snapshot.
func benchSlice(f *fixture, i, epsPerNode, gen int) *discoveryv1.EndpointSlice {
	var opts []kubeobj.EndpointSliceOption
	for n, node := range f.nodes {
		for e := range epsPerNode {
			k := n*epsPerNode + e
			opts = append(opts, kubeobj.WithEndpoint(fmt.Sprintf("10.%d.%d.%d", 64+i/256, i%256, k), node, true, true, false))
		}
	}
	opts = append(opts, kubeobj.WithSlicePort("http", int32(8080+gen%1000)))
	return kubeobj.EndpointSlice(f.ns, fmt.Sprintf("svc-%d", i), fmt.Sprintf("svc-%d-1", i), opts...)
}

// startBenchSource runs a Source over the fixture and returns it with its first snapshot.
func startBenchSource(b *testing.B, srv *kapitest.Server, f *fixture) (*Source, *Snapshot) {
	b.Helper()
	src, err := NewSourceFromConfig(srv.RESTConfig(), Options{
		NodeSelector: map[string]string{"ravel-lb": f.ns}, KeepLastEndpoints: true, Refs: f.refs,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = src.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case s := <-src.Snapshots():
		return src, s
	case <-time.After(time.Minute):
		b.Fatal("no first snapshot")
		return nil, nil
	}
}

func BenchmarkUpdateToSnapshot(b *testing.B) {
	for _, services := range []int{1, 1000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			srv := kapitest.Shared(b)
			f := getFixture(b, srv, services, 20, 5)
			src, _ := startBenchSource(b, srv, f)
			benchUpdates(b, srv.Client(), src, f)
		})
	}
}

// benchUpdates writes max(b.N, 200) updates to svc-0's slice, one at a time, and measures each
// until the snapshot that carries it.
func benchUpdates(b *testing.B, c kubernetes.Interface, src *Source, f *fixture) {
	ctx := context.Background()
	api := c.DiscoveryV1().EndpointSlices(f.ns)
	ref := f.refs[0]
	n := max(b.N, 200)
	lat := make([]time.Duration, 0, n)
	write := make([]time.Duration, 0, n)
	after := make([]time.Duration, 0, n) // from the Update call's return to the snapshot
	b.ResetTimer()
	for i := 1; i <= n; i++ {
		cur, err := api.Get(ctx, "svc-0-1", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		next := benchSlice(f, 0, 5, i)
		next.ResourceVersion = cur.ResourceVersion
		want := uint16(8080 + i%1000)
		start := time.Now()
		if _, err := api.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		write = append(write, time.Since(start))
		for {
			s := <-src.Snapshots()
			if eps := s.Services[ref].Endpoints; len(eps) > 0 && eps[0].Port == want {
				break
			}
		}
		lat = append(lat, time.Since(start))
		after = append(after, lat[len(lat)-1]-write[len(write)-1])
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(write)
	slices.Sort(after)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / 1e6
	}
	b.ReportMetric(pct(lat, 0.50), "p50-ms")
	b.ReportMetric(pct(lat, 0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	// The API server's share: the Update call alone.
	b.ReportMetric(pct(write, 0.50), "write-p50-ms")
	b.ReportMetric(pct(write, 0.99), "write-p99-ms")
	// Watch delivery and the Source: from the Update call's return to the snapshot (often 0:
	// the event has already been published when the response is read).
	b.ReportMetric(pct(after, 0.99), "after-write-p99-ms")
	// The Source's share: the watch event in the cache → snapshot published.
	var h dto.Metric
	if err := src.m.latency.Write(&h); err == nil && h.Histogram.GetSampleCount() > 0 {
		b.ReportMetric(h.Histogram.GetSampleSum()/float64(h.Histogram.GetSampleCount())*1e3, "source-mean-ms")
	}
	b.ReportMetric(float64(len(lat)), "updates")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkSourceHeap(b *testing.B) {
	for _, c := range []struct{ services, eps int }{{1000, 1}, {1000, 5}, {10000, 5}} {
		// epsPerNode 1 over 20 nodes: 20 endpoints per service; 5: 100 per service
		// (1,000 × 20 × 5 = 100,000 endpoints in all; 10,000: a million, issue 13's set).
		services, eps := c.services, c.eps
		b.Run(fmt.Sprintf("services=%d/nodes=20/eps_per_node=%d", services, eps), func(b *testing.B) {
			srv := kapitest.Shared(b)
			f := getFixture(b, srv, services, 20, eps)
			before := heapInuse()
			src, snap := startBenchSource(b, srv, f)
			after := heapInuse()
			if p := os.Getenv("KUBE_HEAP_PROFILE"); p != "" {
				fh, _ := os.Create(p)
				_ = pprof.WriteHeapProfile(fh)
				fh.Close()
			}
			if len(snap.Services) != services || len(snap.Nodes) < 20 {
				b.Fatalf("snapshot has %d services, %d nodes", len(snap.Services), len(snap.Nodes))
			}
			total := 0
			for _, st := range snap.Services {
				total += len(st.Endpoints)
			}
			b.ReportMetric(float64(after-before)/(1<<20), "source-heap-MB")
			b.ReportMetric(float64(after)/(1<<20), "process-heap-MB")
			b.ReportMetric(float64(total), "endpoints")
			b.ReportMetric(0, "ns/op")
			runtime.KeepAlive(src)
			runtime.KeepAlive(snap)
		})
	}
}

// heapInuse is HeapInuse after two GCs (the second frees what the first's finalizers kept).
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
