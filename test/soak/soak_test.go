// Package soak is the director's resource soak (make soak; not run in CI): EndpointSlice churn
// on a real kube-apiserver for a long while, the director following it on the netops fakes, and
// no growth allowed in goroutines, heap after GC or open file descriptors.
//
// It is a package of its own, not part of package daemon, for two reasons: daemon's TestMain
// runs goleak, which would report kapitest's process-long goroutine (this package runs the API
// server in-process, so its few goroutines and files are counted too, but they do not change
// during the soak); and it must use only what cmd/ravel can use, the exported API.
package soak

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/internal/kapitest"
)

// Growth allowed between the warm-up baseline and the last sample.
const (
	goroutineSlack = 5
	fdSlack        = 5
	heapFactor     = 1.5
	heapSlack      = 4 << 20
	warmup         = 2 // samples under churn before the baseline is taken (the baseline is the last)
)

// TestSoak rewrites one EndpointSlice RAVEL_SOAK_RATE times a second (default 10, round robin
// over 50 services × 10 nodes) for RAVEL_SOAK (a duration; unset: skipped), while a director
// wired as in `ravel run` follows the API server. Every RAVEL_SOAK_SAMPLE (default 1m) it pauses
// the churn, waits until the fake IPVS holds exactly what was last written, and samples
// goroutines, live heap after a GC and open fds; the table is logged as it grows and at the end.
// The last sample may exceed the baseline (the last warm-up sample) by goroutineSlack
// goroutines, fdSlack fds, and heap×heapFactor+heapSlack; the API server must have stayed up
// (same processes) and the director must never have failed an apply.
//
//	RAVEL_SOAK=20m go test ./test/soak -run TestSoak -v -count=1 -timeout 2h
func TestSoak(t *testing.T) {
	p := soakParams(t)
	s := kapitest.Start(t)
	pids := fmt.Sprint(s.PIDs())
	ctx := context.Background()
	cl := newCluster(t, ctx, s.Client()) // the churn's one client
	d := startDirector(t, soakConfig(t, s.Kubeconfig, cl.ns))
	t.Logf("soak: %v at %g changes/s over %d services × %d nodes, sampled every %v",
		p.duration, p.rate, soakServices, soakNodes, p.every)

	var rows []sample
	var notes []string
	changes, ipvsOps, writeErrs := 0, 0, 0
	start := time.Now()
	take := func(note string) {
		t.Helper()
		if !s.APIServerRunning() {
			t.Fatal("the API server stopped")
		}
		converge(t, cl, d)
		ipvsOps += d.resetCalls()
		r := sample{at: time.Since(start), changes: changes, ipvsOps: ipvsOps}
		if err := r.readMetrics(d.reg); err != nil {
			t.Fatal(err)
		}
		if err := r.measure(); err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			t.Log(tableHeader)
		}
		rows, notes = append(rows, r), append(notes, note)
		t.Log(r.row(note))
	}
	take("before the churn")
	churn := time.NewTicker(time.Duration(float64(time.Second) / p.rate))
	defer churn.Stop()
	every := time.NewTicker(p.every)
	defer every.Stop()
	for n := p.samples(); len(rows) <= n; {
		select {
		case <-churn.C:
			werr, fatal := cl.change(ctx, changes%soakServices)
			changes++
			if fatal != nil {
				t.Fatalf("change %d: %v", changes, fatal)
			}
			if werr != nil {
				writeErrs++
				t.Logf("change %d: %v (the model is re-read from the API server)", changes, werr)
			}
		case <-every.C:
			note := ""
			if len(rows) == warmup {
				note = "baseline"
			}
			take(note)
		}
	}
	t.Log("\n" + table(rows, notes))

	// The path works, not just idles: the API server holds what was written and the fake IPVS
	// what the API server holds (converge checked it against the model at the last sample).
	stored, err := cl.stored(ctx)
	if err != nil {
		t.Fatalf("the API server after the soak: %v", err)
	}
	for i, eps := range stored {
		if !slices.Equal(eps, cl.svcs[i].eps) {
			t.Errorf("%s: the API server holds %v, the churn wrote %v", cl.svcs[i].name, eps, cl.svcs[i].eps)
		}
	}
	if got := fmt.Sprint(s.PIDs()); got != pids {
		t.Errorf("the API server's processes (etcd, kube-apiserver) were %s, now %s: it restarted", pids, got)
	}
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := sum(mfs, "ravel_apply_errors_total", nil); n != 0 {
		t.Errorf("ravel_apply_errors_total = %g, want 0; last warnings:\n%s", n, d.logs.lastWarnings())
	}
	if writeErrs > changes/100 {
		t.Errorf("%d of %d EndpointSlice writes failed (more than 1%%)", writeErrs, changes)
	}
	records, warns := d.logs.counts()
	t.Logf("%d changes in %v (%.1f/s), %d failed writes; %d log records, %d warnings or errors; %d iptables batches",
		changes, rows[len(rows)-1].at.Round(time.Second), float64(changes)/rows[len(rows)-1].at.Seconds(),
		writeErrs, records, warns, len(d.tables.Batches()))
	checkGrowth(t, rows[warmup], rows[len(rows)-1])
}

// checkGrowth compares the last sample with the baseline and, for a failure, logs what the
// process holds (goroutines grouped by stack, open files).
func checkGrowth(t *testing.T, base, last sample) {
	t.Helper()
	if last.goroutines > base.goroutines+goroutineSlack {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Errorf("goroutines grew from %d (baseline) to %d, more than %d; now:\n%s",
			base.goroutines, last.goroutines, goroutineSlack, b.String())
	}
	if last.fds > base.fds+fdSlack {
		t.Errorf("open fds grew from %d (baseline) to %d, more than %d; now:\n%s",
			base.fds, last.fds, fdSlack, openFiles())
	}
	if limit := uint64(heapFactor*float64(base.heap)) + heapSlack; last.heap > limit {
		t.Errorf("live heap after GC grew from %.1f MiB (baseline) to %.1f MiB, above %.1f MiB (%.1f× + %d MiB)",
			mib(base.heap), mib(last.heap), mib(limit), heapFactor, heapSlack>>20)
	}
}

// converge waits until the fake IPVS holds what the churn last wrote.
func converge(t *testing.T, cl *cluster, d *director) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // a liveness bound, not a figure: it takes ms
	for {
		diff := cl.mismatch(d.ipvs)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the director did not catch up within 2 minutes: %s; last warnings:\n%s", diff, d.logs.lastWarnings())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openFiles lists /proc/self/fd with each descriptor's target.
func openFiles() string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "%s -> %s\n", e.Name(), target)
	}
	return b.String()
}

func table(rows []sample, notes []string) string {
	lines := []string{tableHeader}
	for i, r := range rows {
		lines = append(lines, r.row(notes[i]))
	}
	return strings.Join(lines, "\n")
}

// params are the soak's settings from the environment.
type params struct {
	duration, every time.Duration
	rate            float64 // changes per second
}

// samples is how many samples the churn runs for (after the one before it).
func (p params) samples() int { return int(p.duration / p.every) }

func soakParams(t *testing.T) params {
	t.Helper()
	v := os.Getenv("RAVEL_SOAK")
	if v == "" {
		t.Skip("the resource soak runs only with RAVEL_SOAK=<duration>, e.g. RAVEL_SOAK=20m (make soak)")
	}
	p := params{every: time.Minute, rate: 10}
	var err error
	if p.duration, err = time.ParseDuration(v); err != nil {
		t.Fatalf("RAVEL_SOAK: %v", err)
	}
	if v := os.Getenv("RAVEL_SOAK_SAMPLE"); v != "" {
		if p.every, err = time.ParseDuration(v); err != nil || p.every <= 0 {
			t.Fatalf("RAVEL_SOAK_SAMPLE=%q: want a positive duration", v)
		}
	}
	if v := os.Getenv("RAVEL_SOAK_RATE"); v != "" {
		if p.rate, err = strconv.ParseFloat(v, 64); err != nil || p.rate <= 0 {
			t.Fatalf("RAVEL_SOAK_RATE=%q: want changes per second above 0", v)
		}
	}
	if p.samples() <= warmup {
		t.Fatalf("RAVEL_SOAK=%v is too short: it must cover more than %d samples of RAVEL_SOAK_SAMPLE=%v (the warm-up)", p.duration, warmup, p.every)
	}
	return p
}
