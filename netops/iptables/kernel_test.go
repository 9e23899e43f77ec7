package iptables

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/netnstest"
	"github.com/ravel-lb/ravel/netops"
)

// The tests in this file run iptables for real, each in a network namespace of its own
// (`ip netns add ravel-t-<random>`, internal/netnstest), deleted at the end: the host's tables
// are never touched. They need root, and skip with a message without it.

func needRoot(t *testing.T) {
	t.Helper()
	netnstest.Require(t, "real-kernel iptables tests")
}

// forModes runs f once per iptables backend installed here (nft, legacy), each with its own
// namespace and Real.
func forModes(t *testing.T, f func(t *testing.T, r *Real, ns string, h harness)) {
	forFamilyModes(t, family.IPv4, f)
}

// forFamilyModes is forModes for the table of fam (ip6tables for IPv6).
func forFamilyModes(t *testing.T, fam family.Family, f func(t *testing.T, r *Real, ns string, h harness)) {
	needRoot(t)
	for _, mode := range []string{"nft", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			if _, err := exec.LookPath("iptables-" + mode); err != nil {
				t.Skipf("skipped: iptables-%s is not installed", mode)
			}
			ns := netnstest.New(t)
			r, err := New(prefix, WithNetns(ns), WithMode(mode), WithFamily(fam))
			if err != nil {
				t.Fatal(err)
			}
			h := harness{
				tables: r,
				restore: func(batch string) error {
					_, err := netnstest.Exec(ns, batch, r.restBin, "--noflush")
					return err
				},
				save: func() string {
					out, err := netnstest.Exec(ns, "", r.saveBin, "-t", "nat")
					if err != nil {
						t.Fatal(err)
					}
					return out
				},
			}
			f(t, r, ns, h)
		})
	}
}

// TestKernelScenarios runs the scenarios the Fake passes against the kernel, with both
// backends, and compares against the same golden files: the fake and the kernel agree.
func TestKernelScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			forModes(t, func(t *testing.T, _ *Real, _ string, h harness) { sc.run(t, h) })
		})
	}
}

// TestKernelRefuses runs the batches the fake refuses through iptables-restore: the error
// classes (from iptables' messages, see classify) must be the fake's.
func TestKernelRefuses(t *testing.T) {
	forModes(t, func(t *testing.T, r *Real, ns string, h harness) {
		if err := h.restore(refusalSeed); err != nil {
			t.Fatal(err)
		}
		before := h.save()
		for _, tt := range refusals {
			err := realBackend{r}.restore(context.Background(), tt.batch)
			if !errors.Is(err, tt.class) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.class)
			}
		}
		if _, f := splitSave(h.save()); f != mustForeign(before) {
			t.Errorf("failed batches changed the table (-before +after):\n%s", cmp.Diff(mustForeign(before), f))
		}
	})
}

// TestKernelRefusesOtherFamily: each family's table refuses the other family's addresses with
// the class the fake gives (TestFakeRefusesOtherFamily), and nothing is changed.
func TestKernelRefusesOtherFamily(t *testing.T) {
	for _, fam := range family.All {
		t.Run(fam.String(), func(t *testing.T) {
			forFamilyModes(t, fam, func(t *testing.T, r *Real, ns string, h harness) {
				if r.Family() != fam {
					t.Fatalf("Family() = %v, want %v", r.Family(), fam)
				}
				before := h.save()
				for _, tt := range familyRefusals {
					if tt.fam != fam {
						continue
					}
					err := realBackend{r}.restore(context.Background(), tt.batch)
					if !errors.Is(err, netops.ErrInvalid) {
						t.Errorf("%s: err = %v, want %v", tt.name, err, netops.ErrInvalid)
					}
				}
				if after := h.save(); mustForeign(after) != mustForeign(before) {
					t.Errorf("failed batches changed the table (-before +after):\n%s", cmp.Diff(mustForeign(before), mustForeign(after)))
				}
			})
		})
	}
}

func mustForeign(save string) string { _, f := splitSave(save); return f }

// TestKernelOtherBackend: rules in the legacy tables while ravel uses nf_tables are reported.
func TestKernelOtherBackend(t *testing.T) {
	needRoot(t)
	for _, mode := range []string{"nft", "legacy"} {
		if _, err := exec.LookPath("iptables-" + mode); err != nil {
			t.Skipf("skipped: needs iptables-nft and iptables-legacy; iptables-%s is not installed", mode)
		}
	}
	ns := netnstest.New(t)
	r, err := New(prefix, WithNetns(ns), WithMode("nft"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Dump(context.Background()); err != nil || r.OtherBackendInUse() {
		t.Fatalf("fresh namespace: OtherBackendInUse() = %v (%v), want false", r.OtherBackendInUse(), err)
	}
	if _, err := netnstest.Exec(ns, "", "iptables-legacy", "-t", "nat", "-N", "KUBE-SERVICES"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Dump(context.Background()); err != nil || !r.OtherBackendInUse() {
		t.Errorf("with a legacy chain: OtherBackendInUse() = %v (%v), want true", r.OtherBackendInUse(), err)
	}
}

func TestKernelMode(t *testing.T) {
	forModes(t, func(t *testing.T, r *Real, _ string, _ harness) {
		want := map[string]string{"nft": "nf_tables", "legacy": "legacy"}[t.Name()[strings.LastIndex(t.Name(), "/")+1:]]
		if r.Mode() != want {
			t.Errorf("Mode() = %q, want %q", r.Mode(), want)
		}
		for _, bin := range []string{r.saveBin, r.restBin} {
			if m, _, err := binaryMode(bin); err != nil || m != want {
				t.Errorf("%s is %q (%v), want %q", bin, m, err, want)
			}
		}
	})
}

func TestNewDefaultMode(t *testing.T) {
	needRoot(t)
	r, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := binaryMode("iptables")
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode() != want {
		t.Errorf("Mode() = %q, want the mode of iptables on PATH, %q", r.Mode(), want)
	}
	t.Logf("iptables on PATH: %s; save %s, restore %s %v", want, r.saveBin, r.restBin, r.restArg)
}

func TestNewRefusesBadPrefix(t *testing.T) {
	// Which names are free (not KUBE, not a built-in) is schema.ChainPrefixConflict's rule;
	// New refuses what cannot be written as chains at all.
	for _, p := range []string{"", "RAVEL-LB-TOO", "-RAVEL", "RA VEL"} {
		if _, err := New(p); err == nil {
			t.Errorf("New accepted prefix %q", p)
		}
	}
}

// TestKernelBackendMismatch (issue 11, item 7), both ways round: kube-proxy's KUBE-SERVICES in
// the other backend only is a mismatch, in ravel's is not, and DetectMode (iptables.backend
// auto) picks the backend that holds it.
func TestKernelBackendMismatch(t *testing.T) {
	needRoot(t)
	for _, mode := range []string{"nft", "legacy"} {
		if _, err := exec.LookPath("iptables-" + mode); err != nil {
			t.Skipf("skipped: needs iptables-nft and iptables-legacy; iptables-%s is not installed", mode)
		}
	}
	for _, tc := range []struct{ ravel, kube string }{{"nft", "legacy"}, {"legacy", "nft"}, {"nft", "nft"}} {
		t.Run("ravel "+tc.ravel+", kube-proxy "+tc.kube, func(t *testing.T) {
			ns := netnstest.New(t)
			ctx := context.Background()
			if got := DetectMode(ctx, ns); got != "" {
				t.Errorf("no kube-proxy: DetectMode = %q, want \"\" (the iptables on PATH)", got)
			}
			if _, err := netnstest.Exec(ns, "", "iptables-"+tc.kube, "-t", "nat", "-N", "KUBE-SERVICES"); err != nil {
				t.Fatal(err)
			}
			r, err := New(prefix, WithNetns(ns), WithMode(tc.ravel))
			if err != nil {
				t.Fatal(err)
			}
			b, err := r.CheckBackends(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.ravel != tc.kube; b.Mismatch() != want || !b.OtherAvailable {
				t.Errorf("CheckBackends = %+v (%s): mismatch %v, want %v", b, b, b.Mismatch(), want)
			}
			if got := DetectMode(ctx, ns); got != tc.kube {
				t.Errorf("DetectMode = %q, want %q (where KUBE-SERVICES is)", got, tc.kube)
			}
		})
	}
}
