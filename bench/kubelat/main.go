// Command kubelat measures how long an EndpointSlice change takes to reach IPVS: the latency
// phase of bench/rss.sh, run in the QEMU e2e guest beside `ravel run --role director`, against
// the API server that bench/kubeload filled.
//
//	kubelat -kubeconfig FILE -services N [-nodes 20] [-self bench-n0] [-changes 200]
//
// Each change picks a random service svc-<i> and a random node bench-n<j> (never -self, the
// director's own node, which is no destination), reads the service's EndpointSlice
// svc-<i>-1, flips the ready (and serving) condition of one of that node's endpoints, and
// writes the slice back with an Update. The director weights a node by its ready endpoints,
// so the node's destination (10.250.<j/250>.<1+j%250>:PORT) in the IPVS service
// 10.200.<i/250>.<1+i%250>:PORT/tcp must change weight to the node's new count of ready
// endpoints. kubelat times the change from the Update's acknowledgement to the first poll of
// IPVS (one netlink dump of the service, in process, every -poll) that shows the new weight,
// waits -pause (± half of it, at random), and goes on with the next change. A node's count is
// kept between 1 and its number of endpoints, so a destination never goes to weight 0.
//
// It prints the latencies' percentiles and writes KEY=VALUE lines to -result (appended) and one
// line per change to -csv. It exits 1 if any change did not show within -timeout, or on any
// error; never because of a time.
package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/ipvs"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// vip and nodeIP follow bench/rss.sh's config and bench/kubeload's nodes.
func vip(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 200, byte(i / 250), byte(1 + i%250)}) }
func nodeIP(j int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 250, byte(j / 250), byte(1 + j%250)})
}

type sample struct {
	svc, node      int
	from, to       int           // the node's ready endpoints before and after
	write, latency time.Duration // the Update's round trip; ack → weight seen in IPVS
	polls          int
	seen           bool
	at             time.Time
}

func main() {
	var (
		kubeconfig = flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server")
		namespace  = flag.String("namespace", "bench", "namespace of the services")
		services   = flag.Int("services", 1000, "services svc-0..svc-N-1 (as kubeload made them)")
		nodes      = flag.Int("nodes", 20, "nodes bench-n0..bench-n<N-1>")
		self       = flag.String("self", "bench-n0", "the director's own node (never a destination)")
		port       = flag.Int("port", 80, "the services' port in IPVS (the ravel config's)")
		changes    = flag.Int("changes", 200, "EndpointSlice changes to make")
		poll       = flag.Duration("poll", time.Millisecond, "IPVS poll interval")
		pause      = flag.Duration("pause", 200*time.Millisecond, "mean pause between a change seen and the next one")
		timeout    = flag.Duration("timeout", 30*time.Second, "a change not in IPVS after this is missing")
		debounce   = flag.String("debounce", "?", "the director's debounce (printed only)")
		seed       = flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
		result     = flag.String("result", "", "append KEY=VALUE result lines to this file")
		csvPath    = flag.String("csv", "", "write one line per change to this file")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("kubelat: ")
	if *services < 1 || *nodes < 2 || *changes < 1 || *poll <= 0 {
		log.Fatal("need -services ≥ 1, -nodes ≥ 2, -changes ≥ 1, -poll > 0")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	// moby/ipvs, not ravel's netops: a bench tool reads the kernel as an outsider (and may
	// not import the data path, see internal/layers).
	kern, err := ipvs.New("")
	if err != nil {
		log.Fatal(err)
	}
	defer kern.Close()
	rng := rand.New(rand.NewPCG(*seed, 0x6b75626c6174))
	ctx := context.Background()
	slicesAPI := c.DiscoveryV1().EndpointSlices(*namespace)

	// weight reads the weight of node j's destination in service i (-1: no such destination).
	weight := func(i, j int) (int, error) {
		v := vip(i)
		ds, err := kern.GetDestinations(&ipvs.Service{AddressFamily: syscall.AF_INET, Protocol: syscall.IPPROTO_TCP,
			Address: net.IP(v.AsSlice()), Port: uint16(*port)})
		if err != nil {
			return 0, err
		}
		a := nodeIP(j)
		for _, d := range ds {
			if da, ok := netip.AddrFromSlice(d.Address); ok && da.Unmap() == a && d.Port == uint16(*port) {
				return d.Weight, nil
			}
		}
		return -1, nil
	}

	var candidates []int
	for j := range *nodes {
		if fmt.Sprintf("bench-n%d", j) != *self {
			candidates = append(candidates, j)
		}
	}
	log.Printf("%d changes over %d services × %d nodes, debounce %s, poll every %v, pause ~%v, timeout %v, seed %d",
		*changes, *services, len(candidates), *debounce, *poll, *pause, *timeout, *seed)

	var (
		samples  []sample
		pollTime time.Duration
		polls    int
		mismatch int // weights that were not the slice's count before a change
	)
	for n := range *changes {
		i, j := rng.IntN(*services), candidates[rng.IntN(len(candidates))]
		name := fmt.Sprintf("svc-%d-1", i)
		node := fmt.Sprintf("bench-n%d", j)
		sl, err := slicesAPI.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			log.Fatalf("change %d: get %s: %v", n, name, err)
		}
		var mine []int // indexes of node j's endpoints
		ready := 0
		for k, ep := range sl.Endpoints {
			if ep.NodeName != nil && *ep.NodeName == node {
				mine = append(mine, k)
				if isReady(ep) {
					ready++
				}
			}
		}
		if len(mine) == 0 {
			log.Fatalf("change %d: %s has no endpoint on %s", n, name, node)
		}
		// The director must already show the slice's count; a difference is a change of an
		// earlier run or one ravel missed.
		if w, err := weight(i, j); err != nil {
			log.Fatalf("change %d: read IPVS: %v", n, err)
		} else if w != ready {
			mismatch++
			log.Printf("change %d: before the write, %s in svc-%d has weight %d in IPVS, the slice says %d ready", n, node, i, w, ready)
		}
		// Flip one endpoint, keeping 1 ≤ ready ≤ len(mine).
		want := !isReady(sl.Endpoints[mine[rng.IntN(len(mine))]])
		if ready == 1 {
			want = true
		} else if ready == len(mine) {
			want = false
		}
		var k int
		for _, k = range mine {
			if isReady(sl.Endpoints[k]) != want {
				break
			}
		}
		r, s := want, want
		sl.Endpoints[k].Conditions.Ready, sl.Endpoints[k].Conditions.Serving = &r, &s
		to := ready - 1
		if want {
			to = ready + 1
		}

		t0 := time.Now()
		if _, err := slicesAPI.Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
			log.Fatalf("change %d: update %s: %v", n, name, err)
		}
		ack := time.Now()
		smp := sample{svc: i, node: j, from: ready, to: to, write: ack.Sub(t0), at: ack}
		for {
			p0 := time.Now()
			w, err := weight(i, j)
			p1 := time.Now()
			pollTime += p1.Sub(p0)
			polls++
			smp.polls++
			if err != nil {
				log.Fatalf("change %d: read IPVS: %v", n, err)
			}
			if w == to {
				smp.latency, smp.seen = p1.Sub(ack), true
				break
			}
			if p1.Sub(ack) > *timeout {
				smp.latency = p1.Sub(ack)
				log.Printf("change %d: MISSING: %s in svc-%d still has weight %d %v after the write, want %d", n, node, i, w, *timeout, to)
				break
			}
			time.Sleep(*poll)
		}
		samples = append(samples, smp)
		if (n+1)%20 == 0 {
			log.Printf("%d/%d changes, last %v", n+1, *changes, smp.latency.Round(time.Microsecond))
		}
		time.Sleep(*pause/2 + rand.N(*pause+1))
	}

	var lat, writes []time.Duration
	missing := 0
	for _, s := range samples {
		writes = append(writes, s.write)
		if s.seen {
			lat = append(lat, s.latency)
		} else {
			missing++
		}
	}
	slices.Sort(lat)
	slices.Sort(writes)
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }
	pct := func(xs []time.Duration, p float64) string {
		if len(xs) == 0 {
			return "-"
		}
		return ms(xs[max(0, int(math.Ceil(p*float64(len(xs))))-1)]) // nearest rank
	}
	mean := time.Duration(0)
	if polls > 0 {
		mean = pollTime / time.Duration(polls)
	}
	res := [][2]string{
		{"LAT_CHANGES", strconv.Itoa(len(samples))},
		{"LAT_MISSING", strconv.Itoa(missing)},
		{"LAT_MISMATCH_BEFORE", strconv.Itoa(mismatch)},
		{"LAT_DEBOUNCE", strconv.Quote(*debounce)},
		{"LAT_P50_MS", pct(lat, 0.50)},
		{"LAT_P90_MS", pct(lat, 0.90)},
		{"LAT_P99_MS", pct(lat, 0.99)},
		{"LAT_MAX_MS", pct(lat, 1)},
		{"LAT_MIN_MS", pct(lat, 0)},
		{"LAT_WRITE_P50_MS", pct(writes, 0.50)},
		{"LAT_WRITE_P99_MS", pct(writes, 0.99)},
		{"LAT_POLL_MEAN_MS", strconv.FormatFloat(float64(mean)/1e6, 'f', 2, 64)},
	}
	log.Printf("ack → IPVS over %d changes (debounce %s): p50 %s ms, p90 %s ms, p99 %s ms, max %s ms (min %s); missing %d; "+
		"API write round trip p50 %s ms, p99 %s ms; one IPVS poll %s ms on average",
		len(lat), *debounce, pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), pct(lat, 1), pct(lat, 0), missing,
		pct(writes, 0.5), pct(writes, 0.99), strconv.FormatFloat(float64(mean)/1e6, 'f', 2, 64))
	if *result != "" {
		f, err := os.OpenFile(*result, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		for _, kv := range res {
			fmt.Fprintf(f, "%s=%s\n", kv[0], kv[1])
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
	if *csvPath != "" {
		if err := writeCSV(*csvPath, samples); err != nil {
			log.Fatal(err)
		}
	}
	if missing > 0 {
		log.Printf("FAILED: %d of %d changes never reached IPVS within %v", missing, len(samples), *timeout)
		os.Exit(1)
	}
}

func isReady(ep discoveryv1.Endpoint) bool { return ep.Conditions.Ready == nil || *ep.Conditions.Ready }

func writeCSV(path string, samples []sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"unix_ms", "service", "node", "ready_from", "ready_to", "write_ms", "latency_ms", "polls", "seen"})
	for _, s := range samples {
		_ = w.Write([]string{
			strconv.FormatInt(s.at.UnixMilli(), 10), strconv.Itoa(s.svc), strconv.Itoa(s.node),
			strconv.Itoa(s.from), strconv.Itoa(s.to),
			strconv.FormatFloat(float64(s.write)/1e6, 'f', 2, 64), strconv.FormatFloat(float64(s.latency)/1e6, 'f', 2, 64),
			strconv.Itoa(s.polls), strconv.FormatBool(s.seen),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
