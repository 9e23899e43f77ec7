package health

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkNodeChecks1000 is a director checking 1,000 realserver nodes every 2 s (the
// interval and jitter of the defaults: one GET of each node's view per 2 s, 10 % jitter; at most 64 in flight, below the default 256) for
// 10 s of wall time per iteration, against 1,000 in-process servers on loopback that answer a
// view of 20 services each. It reports probes/s, CPU seconds per second (getrusage of the
// whole process: the servers' side is included, so this is an upper bound on the director's
// cost), the peak of probes in flight, and the peak of open sockets beyond the servers'
// listeners (one kept-alive connection per node, both ends counted in this process).
//
//	go test -run '^$' -bench NodeChecks1000 -benchtime 1x ./health/
func BenchmarkNodeChecks1000(b *testing.B) {
	const nodes, window = 1000, 10 * time.Second
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 8192 {
		lim.Cur = min(lim.Max, 8192)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	view := NodeView{Node: "node", Synced: true}
	for i := range 20 {
		view.Services = append(view.Services, ServiceView{VIP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), Port: 80, Protocol: "tcp", LocalEndpoints: 2, RulesProgrammed: true})
	}
	h := NewHandler(func() NodeView { return view })
	jobs := map[string]Job{}
	var srvs []*http.Server
	for i := range nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		srvs = append(srvs, srv)
		jobs["node"+strconv.Itoa(i)] = Job{Interval: 2 * time.Second, Probe: Probe{Kind: Node, Addr: netip.MustParseAddrPort(ln.Addr().String()), Timeout: time.Second}}
	}
	defer func() {
		for _, s := range srvs {
			s.Close()
		}
	}()
	baseSockets := sockets()
	for b.Loop() {
		var probes, failed atomic.Int64
		var peakInFlight atomic.Int64
		c := NewClient()
		s := NewScheduler(Options{MaxInFlight: 64, Jitter: 0.1, Client: c,
			OnResult: func(_ string, r Result) {
				probes.Add(1)
				if !r.OK {
					failed.Add(1)
				}
			},
			OnInFlight: func(n int) {
				for p := peakInFlight.Load(); int64(n) > p && !peakInFlight.CompareAndSwap(p, int64(n)); p = peakInFlight.Load() {
				}
			}})
		s.Set(jobs)
		ctx, cancel := context.WithTimeout(context.Background(), window)
		var peakSockets int
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					peakSockets = max(peakSockets, sockets()-baseSockets)
				}
			}
		}()
		u0, start := cpu(), time.Now()
		s.Run(ctx)
		elapsed := time.Since(start)
		u1 := cpu()
		cancel()
		wg.Wait()
		c.Close()
		b.ReportMetric(float64(probes.Load())/elapsed.Seconds(), "probes/s")
		b.ReportMetric((u1-u0).Seconds()/elapsed.Seconds(), "cpu-s/s")
		b.ReportMetric(float64(peakInFlight.Load()), "peak-in-flight")
		b.ReportMetric(float64(peakSockets), "peak-sockets")
		b.ReportMetric(float64(failed.Load()), "failed")
	}
}

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sockets counts this process's open socket descriptors.
func sockets() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}
