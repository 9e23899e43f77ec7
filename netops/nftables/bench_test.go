package nftables

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/internal/netnstest"
	"github.com/ravel-lb/ravel/netops"
)

// Benchmarks against the kernel, in a throwaway namespace (root, nft). bench/nftables.sh runs
// them beside the iptables backend's:
//
//	go test ./netops/nftables -run '^$' -bench 'Kernel' -benchtime 15x
//
// The set is the iptables benchmark's: 500 services × 10 local endpoints, 5,000 endpoints.
// BenchmarkKernelFull loads it into an empty namespace, alternately with ravel's Apply (render,
// diff against no record, list the chains, one transaction) and with a plain `nft -f` of the
// same objects (the script knftables' fake dumps for that Apply), and reports the medians, the
// fastest of each and their ratios: ravel's overhead over nft itself.

const benchServices, benchEndpoints = 500, 10

func benchSet(drop bool) []netops.LocalService {
	return netnstest.BenchServices(benchServices, benchEndpoints, drop)
}

var benchOpts = Options{DirectorInterfaces: []string{"eth0", "tunl0", "ip6tnl0"}}

func benchSetup(b *testing.B) (*Tables, string) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("skipped: nftables benchmarks need root (network namespaces)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		b.Skip("skipped: nft is not installed")
	}
	name := fmt.Sprintf("ravel-bn-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v: %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	t, err := New("", WithNetns(name))
	if err != nil {
		b.Fatal(err)
	}
	return t, name
}

func BenchmarkKernelFull(b *testing.B) {
	set := benchSet(false)
	ff, fake := NewFake("")
	if _, err := ff.Apply(context.Background(), benchOpts, set); err != nil {
		b.Fatal(err)
	}
	script := fake.Dump()
	t, ns := benchSetup(b)
	ctx := context.Background()
	var apply, nftF []time.Duration
	timed := func(samples *[]time.Duration, f func() error) {
		if err := t.Cleanup(ctx); err != nil {
			b.Fatal(err)
		}
		// Settle: the kernel frees a deleted ruleset asynchronously, and the next transaction
		// would pay for it; an untimed listing waits that out for both sides.
		if _, err := t.Dump(ctx); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		*samples = append(*samples, time.Since(start))
	}
	applyOnce := func() {
		timed(&apply, func() error {
			c, err := t.Apply(ctx, benchOpts, set)
			if err == nil && !c.Full {
				err = fmt.Errorf("apply into an empty namespace was not a full write: %+v", c)
			}
			return err
		})
	}
	nftOnce := func() {
		timed(&nftF, func() error {
			cmd := exec.Command("nft", "-f", "-")
			cmd.Stdin = strings.NewReader(script)
			var out []byte
			err := netops.InNetns("/run/netns/"+ns, func() (err error) {
				out, err = cmd.CombinedOutput()
				return err
			})
			if err != nil {
				return fmt.Errorf("nft -f: %w: %s", err, out)
			}
			return nil
		})
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // alternate which goes first
			applyOnce()
			nftOnce()
		} else {
			nftOnce()
			applyOnce()
		}
	}
	a, n := netnstest.Median(apply), netnstest.Median(nftF)
	b.ReportMetric(netnstest.Ms(a), "apply-ms")
	b.ReportMetric(netnstest.Ms(n), "nft-f-ms")
	b.ReportMetric(float64(a)/float64(n), "ratio")
	b.ReportMetric(netnstest.Ms(slices.Min(apply)), "apply-min-ms")
	b.ReportMetric(netnstest.Ms(slices.Min(nftF)), "nft-f-min-ms")
	b.ReportMetric(float64(slices.Min(apply))/float64(slices.Min(nftF)), "ratio-min")
}

// BenchmarkKernelOneEndpoint is the steady state: 5,000 endpoints in place, one endpoint of
// one service goes away or comes back; each Apply sends one partial transaction (the service's
// chain rewritten, the endpoint's chain added or deleted), without reading the kernel.
func BenchmarkKernelOneEndpoint(b *testing.B) {
	full, less := benchSet(false), benchSet(true)
	t, ns := benchSetup(b)
	ctx := context.Background()
	if _, err := t.Apply(ctx, benchOpts, full); err != nil {
		b.Fatal(err)
	}
	var samples []time.Duration
	ops := 0
	for i := 0; b.Loop(); i++ {
		want := less
		if i%2 == 1 {
			want = full
		}
		start := time.Now()
		c, err := t.Apply(ctx, benchOpts, want)
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
		if c.Full || len(c.Chains) != 2 || c.Elements != 0 {
			b.Fatalf("change %+v, want the service's chain and one endpoint chain only", c)
		}
		ops = max(ops, c.Ops)
	}
	b.ReportMetric(netnstest.Ms(netnstest.Median(samples)), "apply-ms")
	b.ReportMetric(float64(ops), "nft-ops")
	// The floor of any change to this table through nft: a transaction of two commands on the
	// same loaded table (the nft process, its parse, and the kernel's commit of a table with
	// 5,500 chains), which a netlink library would cut only by the process start.
	var floor []time.Duration
	for range 15 {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader("add chain inet ravel probe\ndelete chain inet ravel probe\n")
		start := time.Now()
		err := netops.InNetns("/run/netns/"+ns, func() error { return cmd.Run() })
		if err != nil {
			b.Fatal(err)
		}
		floor = append(floor, time.Since(start))
	}
	b.ReportMetric(netnstest.Ms(netnstest.Median(floor)), "nft-floor-ms")
}

// BenchmarkKernelResync is the resync timer's work on 5,000 endpoints: read the table (chains,
// rules, the four maps) and rewrite it whole in one transaction.
func BenchmarkKernelResync(b *testing.B) {
	full := benchSet(false)
	t, _ := benchSetup(b)
	ctx := context.Background()
	if _, err := t.Apply(ctx, benchOpts, full); err != nil {
		b.Fatal(err)
	}
	var samples []time.Duration
	for b.Loop() {
		start := time.Now()
		d, _, err := t.Resync(ctx, benchOpts, full)
		if err != nil || !d.Empty() {
			b.Fatalf("resync: drift %+v, %v", d, err)
		}
		samples = append(samples, time.Since(start))
	}
	b.ReportMetric(netnstest.Ms(netnstest.Median(samples)), "resync-ms")
}
