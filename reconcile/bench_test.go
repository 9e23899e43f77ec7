package reconcile

// Benchmarks of the pure core at the scale the issue names: 100, 1,000 and 10,000 services
// with 20 destinations each. Run them with
//
//	go test ./reconcile -run '^$' -bench . -benchmem -count 3

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
)

const benchDests = 20

// benchVIP spreads services over 250 VIPs, ports 1000 and up, as a large director would.
func benchVIP(i int) (netip.Addr, int) {
	return netip.AddrFrom4([4]byte{10, 50, 0, byte(1 + i%250)}), 1000 + i/250
}

// benchConfigYAML generates a director config of n services, each either with 20 static
// backends or following a Kubernetes service.
func benchConfigYAML(n int, kubernetes bool) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: director-1, role: director}\n")
	if kubernetes {
		b.WriteString("kubernetes: {}\n")
	}
	pool := map[netip.Addr]bool{}
	var vips []string
	for i := range n {
		v, _ := benchVIP(i)
		if !pool[v] {
			pool[v] = true
			vips = append(vips, v.String())
		}
	}
	fmt.Fprintf(&b, "vipPool: [%s]\n", strings.Join(vips, ", "))
	if !kubernetes {
		// Thresholds make Desired split them; not for Kubernetes services, where a change of
		// one node's weight would then legitimately change every node's share.
		b.WriteString("defaults: {ipvs: {upperThreshold: 1000, lowerThreshold: 100}}\n")
	}
	b.WriteString("services:\n")
	for i := range n {
		v, port := benchVIP(i)
		fmt.Fprintf(&b, "  - {name: svc-%d, vip: %s, port: %d", i, v, port)
		if kubernetes {
			fmt.Fprintf(&b, ", kubernetes: {namespace: ns, service: svc-%d, portName: http}}\n", i)
			continue
		}
		b.WriteString(", backends: [")
		for j := range benchDests {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "{address: 10.60.%d.%d, weight: %d}", j, 1+i%250, 1+(i+j)%5)
		}
		b.WriteString("]}\n")
	}
	return []byte(b.String())
}

var benchConfigs sync.Map // "n/kube" → *config.Config; parsing 10,000 services takes a while

func benchConfig(b *testing.B, n int, kubernetes bool) *config.Config {
	b.Helper()
	key := fmt.Sprintf("%d/%t", n, kubernetes)
	if c, ok := benchConfigs.Load(key); ok {
		return c.(*config.Config)
	}
	cfg, err := config.Parse("bench.yaml", benchConfigYAML(n, kubernetes))
	if err != nil {
		b.Fatal(err)
	}
	benchConfigs.Store(key, cfg)
	return cfg
}

func benchRef(i int) kube.ServiceRef {
	return kube.ServiceRef{Namespace: "ns", Service: fmt.Sprintf("svc-%d", i), PortName: "http", Family: family.IPv4}
}

// benchSnapshot is a cluster of 20 eligible nodes plus the director's own, with 1 to 3
// ready endpoints of every service on every node.
func benchSnapshot(n int) *kube.Snapshot {
	s := &kube.Snapshot{Nodes: map[string]kube.Node{}, Services: make(map[kube.ServiceRef]kube.ServiceState, n)}
	for j := range benchDests + 1 {
		name := fmt.Sprintf("node-%02d", j)
		if j == benchDests {
			name = "director-1"
		}
		s.Nodes[name] = kube.Node{Name: name, Address: netip.AddrFrom4([4]byte{10, 70, 0, byte(1 + j)}), Ready: true, Selected: true}
	}
	for i := range n {
		var eps []kube.Endpoint
		for j := range benchDests {
			for k := range 1 + (i+j)%3 {
				eps = append(eps, kube.Endpoint{Address: netip.AddrFrom4([4]byte{10, 244, byte(j), byte(k)}), NodeName: fmt.Sprintf("node-%02d", j), Ready: true, Serving: true, Port: 8080})
			}
		}
		s.Services[benchRef(i)] = kube.ServiceState{Status: kube.StatusOK, Endpoints: eps}
		s.Changed = append(s.Changed, benchRef(i))
	}
	s.NodesChanged = true
	return s
}

// cpuTime is the CPU time of the whole process so far (user and system, every thread, so
// the garbage collector's work counts too).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op beside ns/op: on a busy machine, wall time per op says as much
// about the neighbours as about the code.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// asActual returns what ReadActual would give for a kernel holding st.
func asActual(st *State) *State { return copyState(st) }

func BenchmarkDesiredDiff(b *testing.B) {
	node := Node{Name: "director-1", Role: "director"}
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			for _, source := range []string{"static", "kubernetes"} {
				kubernetes := source == "kubernetes"
				cfg := benchConfig(b, n, kubernetes)
				var snap *kube.Snapshot
				if kubernetes {
					snap = benchSnapshot(n)
				}
				opts := DiffOptions{Now: t0, DrainTimeout: 30 * time.Second, Drains: &Drains{}, Owned: OwnedVIPs(cfg)}
				want, _ := Desired(cfg, snap, node)
				for _, against := range []string{"steady", "empty"} {
					actual := NewState(cfg.Node.VIPInterface)
					wantOps := 0
					if against == "steady" {
						actual = asActual(want)
					} else {
						wantOps = 1 + len(want.VIPs) + len(want.Services)*(1+benchDests)
					}
					b.Run(source+"/"+against, func(b *testing.B) {
						var p *Plan
						start := cpuTime(b)
						for b.Loop() {
							d, _ := Desired(cfg, snap, node)
							p = Diff(d, actual, opts)
						}
						reportCPU(b, start)
						if len(p.Ops) != wantOps {
							b.Fatalf("plan has %d ops, want %d", len(p.Ops), wantOps)
						}
					})
				}
			}
		})
	}
}

// BenchmarkOneChange measures what the daemon does for a snapshot whose Changed lists one
// service: DesiredService for the config service that follows it, then DiffServices for its
// keys. One destination's weight changed; the plan must be exactly one update-destination.
func BenchmarkOneChange(b *testing.B) {
	node := Node{Name: "director-1", Role: "director"}
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			cfg := benchConfig(b, n, true)
			before := benchSnapshot(n)
			desired, _ := Desired(cfg, before, node)
			actual := asActual(desired) // the kernel holds the previous snapshot's state

			// The next snapshot: node-07 lost one endpoint of one service.
			changed := n / 2
			r := benchRef(changed)
			after := &kube.Snapshot{Nodes: before.Nodes, Services: make(map[kube.ServiceRef]kube.ServiceState, n), Changed: []kube.ServiceRef{r}}
			for k, v := range before.Services {
				after.Services[k] = v
			}
			st := after.Services[r]
			eps := make([]kube.Endpoint, 0, len(st.Endpoints))
			dropped := false
			for _, e := range st.Endpoints {
				if e.NodeName == "node-07" && !dropped {
					dropped = true
					continue
				}
				eps = append(eps, e)
			}
			after.Services[r] = kube.ServiceState{Status: st.Status, Endpoints: eps}

			// The daemon maps a changed ref to its config services once per config.
			byRef := map[kube.ServiceRef][]int{}
			for i, s := range cfg.Services {
				if t := s.Kubernetes; t != nil {
					ref := kube.ServiceRef{Namespace: t.Namespace, Service: t.Service, PortName: t.PortName, Family: family.IPv4}
					byRef[ref] = append(byRef[ref], i)
				}
			}
			opts := DiffOptions{Now: t0, DrainTimeout: 30 * time.Second, Drains: &Drains{}, Owned: OwnedVIPs(cfg)}
			var (
				p     *Plan
				keys  []netops.ServiceKey
				notes []Note
			)
			start := cpuTime(b)
			for b.Loop() {
				keys, notes = keys[:0], notes[:0]
				for _, ref := range after.Changed {
					for _, i := range byRef[ref] {
						for _, vs := range DesiredService(cfg, i, after, node, nil, &notes) {
							desired.Services[vs.ServiceKey] = vs
							keys = append(keys, vs.ServiceKey)
						}
					}
				}
				p = DiffServices(desired, actual, keys, opts)
			}
			reportCPU(b, start)
			if len(p.Ops) != 1 || p.Ops[0].Kind != OpUpdateDest || p.Ops[0].OldDest.Weight-p.Ops[0].Dest.Weight != 1 ||
				p.Ops[0].Dest.Addr != before.Nodes["node-07"].Address || len(p.DrainsStarted) != 0 {
				b.Fatalf("want exactly one update-destination of node-07 lowering its weight by 1, got:\n%s", p)
			}
		})
	}
}
