package iptables

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/internal/netnstest"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

// Benchmarks of Apply against the kernel, in a throwaway namespace (root only). The figures the
// project reports come from bench/iptables.sh, which runs:
//
//	go test ./netops/iptables -run '^$' -bench 'Full|OneEndpoint|Noop' -benchtime 15x
//
// BenchmarkFull loads the same 5,000 realserver rules (500 services x 10 local endpoints) into
// an empty nat table, alternately with ravel's Apply (its iptables-save read, parse, diff and
// the one batch, jumps included) and with a plain `iptables-restore --noflush` of the very batch
// Apply writes, and reports the median of each and their ratio: ravel's overhead over the
// floor. Alternating the order, and medians, keep the ratio fair on a busy machine.

const benchServices, benchEndpoints = 500, 10

func benchRuleset(drop bool) chains.Ruleset {
	return chains.Render(chains.Options{Chain: prefix}, netnstest.BenchServices(benchServices, benchEndpoints, drop))
}

func benchSetup(b *testing.B, mode string) (*Real, string) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("skipped: iptables benchmarks need root (network namespaces)")
	}
	if _, err := exec.LookPath("iptables-" + mode); err != nil {
		b.Skipf("skipped: iptables-%s is not installed", mode)
	}
	name := fmt.Sprintf("ravel-b-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v: %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	r, err := New(prefix, WithNetns(name), WithMode(mode))
	if err != nil {
		b.Fatal(err)
	}
	return r, name
}

func benchModes(b *testing.B, f func(b *testing.B, r *Real)) {
	for _, mode := range []string{"nft", "legacy"} {
		b.Run(mode, func(b *testing.B) {
			r, _ := benchSetup(b, mode)
			f(b, r)
		})
	}
}

func BenchmarkFull(b *testing.B) {
	want := benchRuleset(false)
	batch := chains.Diff(chains.Ruleset{Prefix: prefix}, want).Batch()
	benchModes(b, func(b *testing.B, r *Real) {
		ctx := context.Background()
		rb := realBackend{r}
		var apply, restore []time.Duration
		timed := func(samples *[]time.Duration, f func() error) {
			if err := r.Cleanup(ctx); err != nil {
				b.Fatal(err)
			}
			// Settle: the kernel frees a deleted nf_tables ruleset asynchronously, and the next
			// transaction would pay for it; an untimed save waits that out for both sides.
			if _, err := rb.save(ctx); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			*samples = append(*samples, time.Since(start))
		}
		applyOnce := func() { timed(&apply, func() error { _, err := r.Apply(ctx, want); return err }) }
		restoreOnce := func() { timed(&restore, func() error { return rb.restore(ctx, batch) }) }
		for i := 0; b.Loop(); i++ {
			if i%2 == 0 { // alternate which goes first, so neither always follows the other
				applyOnce()
				restoreOnce()
			} else {
				restoreOnce()
				applyOnce()
			}
		}
		a, rs := netnstest.Median(apply), netnstest.Median(restore)
		b.ReportMetric(netnstest.Ms(a), "apply-ms")
		b.ReportMetric(netnstest.Ms(rs), "restore-ms")
		b.ReportMetric(float64(a)/float64(rs), "ratio")
		// The fastest runs: other load on the machine only ever adds time.
		b.ReportMetric(netnstest.Ms(slices.Min(apply)), "apply-min-ms")
		b.ReportMetric(netnstest.Ms(slices.Min(restore)), "restore-min-ms")
		b.ReportMetric(float64(slices.Min(apply))/float64(slices.Min(restore)), "ratio-min")
	})
}

// BenchmarkApplyOneEndpoint is the steady state: 5,000 rules in place, one endpoint of one
// service goes away or comes back; each Apply reads the table and rewrites one chain.
func BenchmarkApplyOneEndpoint(b *testing.B) {
	full, less := benchRuleset(false), benchRuleset(true)
	benchModes(b, func(b *testing.B, r *Real) {
		ctx := context.Background()
		if _, err := r.Apply(ctx, full); err != nil {
			b.Fatal(err)
		}
		var samples []time.Duration
		for i := 0; b.Loop(); i++ {
			want := less
			if i%2 == 1 {
				want = full
			}
			start := time.Now()
			p, err := r.Apply(ctx, want)
			if err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(start))
			if len(p.Write) != 1 {
				b.Fatalf("Apply wrote %d chains, want 1", len(p.Write))
			}
		}
		b.ReportMetric(netnstest.Ms(netnstest.Median(samples)), "apply-ms")
	})
}

// BenchmarkApplyNoop is a periodic resync that finds nothing to repair: read and diff only.
func BenchmarkApplyNoop(b *testing.B) {
	full := benchRuleset(false)
	benchModes(b, func(b *testing.B, r *Real) {
		ctx := context.Background()
		if _, err := r.Apply(ctx, full); err != nil {
			b.Fatal(err)
		}
		var samples []time.Duration
		for b.Loop() {
			start := time.Now()
			if p, err := r.Apply(ctx, full); err != nil || !p.Empty() {
				b.Fatalf("Apply: %v, patch:\n%s", err, p)
			}
			samples = append(samples, time.Since(start))
		}
		b.ReportMetric(netnstest.Ms(netnstest.Median(samples)), "apply-ms")
	})
}

// BenchmarkRenderDiff is the pure part of an Apply of 5,000 endpoints: render, parse, diff.
func BenchmarkRenderDiff(b *testing.B) {
	save := benchRuleset(false).String()
	for b.Loop() {
		chains.Diff(chains.Parse(prefix, save), benchRuleset(true))
	}
}
