package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/internal/kubeobj"
	"github.com/ravel-lb/ravel/internal/parallel"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/reconcile"
)

// BenchmarkUpdateToPlan measures the whole director path on a real kube-apiserver:
//
//	go test ./daemon -run '^$' -bench UpdateToPlan -benchtime 200x
//
// Each update rewrites svc-0's EndpointSlice (the clock starts just before the Update call),
// the kube.Source (debounce 0/0) publishes a snapshot, and the Director's OnSnapshot computes
// the plan and applies it to the netops fakes; the clock stops when OnSnapshot returns for the
// snapshot that carries the update. Updates alternate one endpoint on node 0 between ready and
// not ready, so node 0's weight alternates 5 and 4 and each update is recognisable (and
// checked in the fake IPVS afterwards, outside the clock). 20 nodes, 5 endpoints per node and
// service; with 1, 1,000 and 10,000 configured services (-bench 'UpdateToPlan/services=1000$'
// runs one). It skips when kapitest does (no cached kube-apiserver/etcd and RAVEL_REQUIRE_KAPI
// unset).
//
// Metrics: p50-ms, p99-ms, max-ms of the whole path, and its parts: write-* (the Update
// call, i.e. the API server and etcd), source-* (from the Update call's return until the
// snapshot is read from Snapshots; often ~0 because the watch event arrives before the
// response is read), plan-* (OnSnapshot: desired state, diff and apply to the fakes), and
// after-write-* (source and plan together: ravel's share, per update).
// At least 200 updates are measured whenever b.N > 1.
func BenchmarkUpdateToPlan(b *testing.B) {
	rc := startKapiHelper(b)
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	fx := &benchFixtures{client: c, byCount: map[int]*kubeFixture{}}
	for _, services := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			f := fx.get(b, services)
			benchUpdateToPlan(b, rc, c, f)
		})
	}
}

const (
	benchNodes      = 20
	benchEpsPerNode = 5
)

// kubeFixture is one namespace with services svc-0..svc-N-1, each with one EndpointSlice
// (benchEpsPerNode ready endpoints on each of benchNodes nodes), and the director config that
// follows them. Nodes are labelled ravel-lb=<namespace>, the config's nodeSelector, so the
// nodes of another fixture on the same server are never eligible.
type kubeFixture struct {
	ns    string
	nodes []string
	cfg   *config.Config
}

// benchFixtures builds each fixture once: a sub-benchmark's body runs once with b.N = 1 and
// again with the real b.N.
type benchFixtures struct {
	client  kubernetes.Interface
	mu      sync.Mutex
	byCount map[int]*kubeFixture
}

func (fx *benchFixtures) get(b *testing.B, services int) *kubeFixture {
	b.Helper()
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if f := fx.byCount[services]; f != nil {
		return f
	}
	start := time.Now()
	ctx := context.Background()
	c := fx.client
	ns, err := c.CoreV1().Namespaces().Create(ctx,
		kubeobj.Namespace("", kubeobj.WithGenerateName(fmt.Sprintf("bench-%d-", services))), metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	f := &kubeFixture{ns: ns.Name}
	for i := range benchNodes {
		name := fmt.Sprintf("%s-n%d", f.ns, i)
		f.nodes = append(f.nodes, name)
		n := kubeobj.Node(name, kubeobj.WithNodeIP(fmt.Sprintf("192.0.%d.%d", 100+i/250, 1+i%250)),
			kubeobj.WithLabels(map[string]string{"ravel-lb": f.ns}), kubeobj.Ready(true))
		if _, err := c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	err = parallel.Do(services, 16, func(i int) error {
		svc := kubeobj.Service(f.ns, fmt.Sprintf("svc-%d", i), kubeobj.WithPort("http", 80, 8080))
		if _, err := c.CoreV1().Services(f.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err := c.DiscoveryV1().EndpointSlices(f.ns).Create(ctx, f.slice(i, true), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	f.cfg = f.config(b, services)
	b.Logf("fixture: %d services × %d nodes × %d endpoints per node, built in %v",
		services, benchNodes, benchEpsPerNode, time.Since(start).Round(time.Millisecond))
	fx.byCount[services] = f
	return f
}

// slice is service i's EndpointSlice; firstReady sets the readiness of the first endpoint
// (on node 0), the one the benchmark toggles.
func (f *kubeFixture) slice(i int, firstReady bool) *discoveryv1.EndpointSlice {
	opts := make([]kubeobj.EndpointSliceOption, 0, benchNodes*benchEpsPerNode+1)
	for n, node := range f.nodes {
		for e := range benchEpsPerNode {
			k := n*benchEpsPerNode + e
			ready := k != 0 || firstReady
			opts = append(opts, kubeobj.WithEndpoint(fmt.Sprintf("10.%d.%d.%d", 64+i/256, i%256, k), node, ready, ready, false))
		}
	}
	opts = append(opts, kubeobj.WithSlicePort("http", 8080))
	return kubeobj.EndpointSlice(f.ns, fmt.Sprintf("svc-%d", i), fmt.Sprintf("svc-%d-1", i), opts...)
}

// config is a director config with one service per Kubernetes service, each on its own VIP
// (10.200.0.1 upwards), loaded with the daemon's loader.
func (f *kubeFixture) config(b *testing.B, services int) *config.Config {
	b.Helper()
	var pool, svcs strings.Builder
	for i := range services {
		vip := benchVIP(i)
		fmt.Fprintf(&pool, "  - %s\n", vip)
		fmt.Fprintf(&svcs, "  - {name: svc-%d, vip: %s, port: 80, kubernetes: {namespace: %s, service: svc-%d, portName: http}}\n",
			i, vip, f.ns, i)
	}
	yaml := fmt.Sprintf(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director-1, role: director, interface: eth0, vipInterface: ravel0}
kubernetes:
  nodeSelector: {ravel-lb: %s}
  debounce: {quiet: 0s, maxDelay: 0s}
vipPool:
%sservices:
%s`, f.ns, pool.String(), svcs.String())
	cfg, err := config.Parse("bench-director.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

func benchVIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 200, byte((i + 1) / 256), byte((i + 1) % 256)})
}

func benchUpdateToPlan(b *testing.B, rc *rest.Config, c kubernetes.Interface, f *kubeFixture) {
	cfg := f.cfg
	opts := kube.OptionsFrom(&cfg.ClusterConfig)
	refs := opts.Refs
	opts.Logger = slog.New(slog.DiscardHandler)
	src, err := kube.NewSourceFromConfig(rc, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = src.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })

	ipvs := netops.NewFakeIPVS()
	k := reconcile.Kernel{IPVS: ipvs, Links: netops.NewFakeLinks(), Sysctl: netops.NewFakeSysctl()}
	d := NewDirector(cfg, nodeOf(cfg), k, nil, slog.New(slog.DiscardHandler), NewMetrics(nil))
	select {
	case s := <-src.Snapshots():
		d.OnSnapshot(s) // the first snapshot: a full sync
	case <-time.After(2 * time.Minute):
		b.Fatal("no first snapshot from the kube source")
	}
	key := netops.ServiceKey{VIP: benchVIP(0), Port: 80, Proto: netops.TCP}
	dest := netip.MustParseAddr("192.0.100.1") // node 0
	// The slice is as the previous run (b.N = 1) left it: node 0 at 5 or 4 ready endpoints.
	firstReady := true
	switch w := destWeight(b, ipvs, key, dest); w {
	case benchEpsPerNode:
	case benchEpsPerNode - 1:
		firstReady = false
	default:
		b.Fatalf("after the full sync node 0 has weight %d, want %d or %d", w, benchEpsPerNode, benchEpsPerNode-1)
	}

	n := b.N
	if n > 1 {
		n = max(n, 200)
	}
	api := c.DiscoveryV1().EndpointSlices(f.ns)
	ref := refs[0]
	cur, err := api.Get(context.Background(), "svc-0-1", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var total, write, source, plan, after []time.Duration
	if n > 1 {
		b.Logf("load average before: %s", loadavg())
	}
	b.ResetTimer()
	for i := 1; i <= n; i++ {
		firstReady = !firstReady
		want := benchEpsPerNode
		if !firstReady {
			want--
		}
		next := f.slice(0, firstReady)
		next.ResourceVersion = cur.ResourceVersion
		t0 := time.Now()
		cur, err = api.Update(context.Background(), next, metav1.UpdateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		var t2, t3 time.Time
		for {
			var s *kube.Snapshot
			select {
			case s = <-src.Snapshots():
			case <-time.After(time.Minute):
				b.Fatalf("update %d: no snapshot with node 0 at %d ready endpoints after a minute", i, want)
			}
			t2 = time.Now()
			d.OnSnapshot(s)
			t3 = time.Now()
			if s.Services[ref].ReadyByNode()[f.nodes[0]] == want {
				break
			}
		}
		total = append(total, t3.Sub(t0))
		write = append(write, t1.Sub(t0))
		source = append(source, t2.Sub(t1))
		plan = append(plan, t3.Sub(t2))
		after = append(after, t3.Sub(t1))
		b.StopTimer()
		if w := destWeight(b, ipvs, key, dest); w != want {
			b.Fatalf("update %d: node 0 has weight %d in IPVS, want %d", i, w, want)
		}
		b.StartTimer()
	}
	b.StopTimer()
	if n > 1 {
		b.Logf("load average after: %s", loadavg())
	}
	report := func(prefix string, d []time.Duration) {
		slices.Sort(d)
		pct := func(p float64) float64 { return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / 1e6 }
		b.ReportMetric(pct(0.50), prefix+"p50-ms")
		b.ReportMetric(pct(0.99), prefix+"p99-ms")
		if prefix == "" {
			b.ReportMetric(float64(d[len(d)-1])/1e6, "max-ms")
		}
	}
	report("", total)
	report("write-", write)
	report("source-", source)
	report("plan-", plan)
	report("after-write-", after)
	b.ReportMetric(float64(n), "updates")
	b.ReportMetric(0, "ns/op") // one op is not one update when b.N < 200; read the metrics
}

// destWeight is the weight of the destination at address dest of IPVS service key.
func destWeight(b *testing.B, ipvs *netops.FakeIPVS, key netops.ServiceKey, dest netip.Addr) int {
	b.Helper()
	dests, err := ipvs.Destinations(key)
	if err != nil {
		b.Fatalf("%v: %v", key, err)
	}
	for _, d := range dests {
		if d.Addr == dest {
			return d.Weight
		}
	}
	b.Fatalf("%v has no destination %v", key, dest)
	return 0
}

// loadavg is the first three fields of /proc/loadavg (the host is shared: read the figures
// with it).
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}
