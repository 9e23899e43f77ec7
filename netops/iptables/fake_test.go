package iptables

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/internal/golden"
	"github.com/ravel-lb/ravel/netops"
)

func fakeHarness() (*Fake, harness) {
	f := NewFake(prefix)
	return f, harness{tables: f, restore: f.Restore, save: f.Save}
}

func TestFakeScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			_, h := fakeHarness()
			sc.run(t, h)
		})
	}
}

func TestFakeOneBatchPerApply(t *testing.T) {
	f, h := fakeHarness()
	mustApply(t, h, render(false, web, dns))
	mustApply(t, h, render(false, webLess, dns))
	mustApply(t, h, render(false, webLess, dns))
	if got := f.Calls(OpRestore); got != 2 {
		t.Errorf("restores = %d, want 2 (the third Apply has nothing to do)", got)
	}
	if got := f.Calls(OpSave); got != 3 {
		t.Errorf("saves = %d, want one per Apply", got)
	}
	golden.Check(t, "fake-batch-endpoint-removed", f.Batches()[1])
}

// refusals are batches iptables-restore refuses, with the error class; TestFakeRefuses and
// TestKernelRefuses check that the fake and both kernel backends agree.
var refusals = []struct {
	name  string
	batch string
	class error
}{
	{"jump to missing chain", "*nat\n-A PREROUTING -j RAVEL-NOPE\nCOMMIT\n", netops.ErrNotExist},
	{"rule in missing chain", "*nat\n-A RAVEL-NOPE -j ACCEPT\nCOMMIT\n", netops.ErrNotExist},
	{"delete missing rule", "*nat\n-D PREROUTING -j ACCEPT\nCOMMIT\n", netops.ErrNotExist},
	{"delete missing chain", "*nat\n-X RAVEL-NOPE\nCOMMIT\n", netops.ErrNotExist},
	{"delete referenced chain", "*nat\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-X B\nCOMMIT\n", ErrInUse},
	{"delete non-empty chain", "*nat\n:A - [0:0]\n-A A -j ACCEPT\n-X A\nCOMMIT\n", ErrInUse},
	{"DNAT port without -p", "*nat\n:A - [0:0]\n-A A -j DNAT --to-destination 10.0.0.1:80\nCOMMIT\n", netops.ErrInvalid},
	{"chain name too long", "*nat\n:" + strings.Repeat("A", 29) + " - [0:0]\nCOMMIT\n", netops.ErrInvalid},
	{"insert beyond end", "*nat\n-I PREROUTING 2 -j ACCEPT\nCOMMIT\n", netops.ErrInvalid},
}

// fakeOnlyRefusals are refused by the fake, which has less than iptables: built-in chains
// cannot be deleted in either (iptables' message has no class), the fake has only nat, and
// iptables-restore silently accepts a batch without COMMIT (and applies nothing).
var fakeOnlyRefusals = []struct {
	name  string
	batch string
	class error
}{
	{"delete built-in chain", "*nat\n-X PREROUTING\nCOMMIT\n", netops.ErrInvalid},
	{"no COMMIT", "*nat\n:A - [0:0]\n", netops.ErrInvalid},
	{"another table", "*filter\nCOMMIT\n", netops.ErrInvalid},
}

// familyRefusals are batches a table refuses for an address of the other family: iptables'
// nat table an IPv6 one, ip6tables' an IPv4 one. TestFakeRefuses and TestKernelRefuses run
// them against the table of fam.
var familyRefusals = []struct {
	name  string
	fam   family.Family
	batch string
}{
	{"IPv6 destination in iptables", family.IPv4, "*nat\n:A - [0:0]\n-A A -d fd00::1/128 -j RETURN\nCOMMIT\n"},
	{"IPv6 DNAT in iptables", family.IPv4, "*nat\n:A - [0:0]\n-A A -p tcp -j DNAT --to-destination [fd00::1]:80\nCOMMIT\n"},
	{"IPv4 destination in ip6tables", family.IPv6, "*nat\n:A - [0:0]\n-A A -d 10.0.0.1/32 -j RETURN\nCOMMIT\n"},
	{"IPv4 DNAT in ip6tables", family.IPv6, "*nat\n:A - [0:0]\n-A A -p tcp -j DNAT --to-destination 10.0.0.1:80\nCOMMIT\n"},
	{"IPv4 DNAT without port in ip6tables", family.IPv6, "*nat\n:A - [0:0]\n-A A -p tcp -j DNAT --to-destination 10.0.0.1\nCOMMIT\n"},
}

const refusalSeed = "*nat\n:KEEP - [0:0]\n-A KEEP -j RETURN\nCOMMIT\n"

func TestFakeRefuses(t *testing.T) {
	for _, tt := range append(refusals, fakeOnlyRefusals...) {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(prefix)
			if err := f.Restore(refusalSeed); err != nil {
				t.Fatal(err)
			}
			before := f.Save()
			err := f.Restore(tt.batch)
			if !errors.Is(err, tt.class) {
				t.Errorf("err = %v, want %v", err, tt.class)
			}
			if got := f.Save(); got != before {
				t.Errorf("failed batch changed the table:\n%s", cmp.Diff(before, got))
			}
		})
	}
}

func TestFakeRefusesOtherFamily(t *testing.T) {
	for _, tt := range familyRefusals {
		f := NewFakeFamily(prefix, tt.fam)
		before := f.Save()
		if err := f.Restore(tt.batch); !errors.Is(err, netops.ErrInvalid) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, netops.ErrInvalid)
		}
		if got := f.Save(); got != before {
			t.Errorf("%s: failed batch changed the table:\n%s", tt.name, cmp.Diff(before, got))
		}
	}
	// and the same rules in their own family's table pass
	v6 := NewFakeFamily(prefix, family.IPv6)
	if err := v6.Restore("*nat\n:A - [0:0]\n-A A -d fd00::1/128 -p tcp -m tcp --dport 80 -j RETURN\n" +
		"-A A -p tcp -j DNAT --to-destination [fd00::1]:80\n-A A -p tcp -j DNAT --to-destination fd00::2\nCOMMIT\n"); err != nil {
		t.Errorf("IPv6 rules in the IPv6 table: %v", err)
	}
}

func TestFakeDNATWithPortAndProtocol(t *testing.T) {
	f := NewFake(prefix)
	if err := f.Restore("*nat\n:A - [0:0]\n-A A -p tcp -j DNAT --to-destination 10.0.0.1:80\n-A A -j DNAT --to-destination 10.0.0.1\nCOMMIT\n"); err != nil {
		t.Fatal(err)
	}
}

func TestFakeFailNext(t *testing.T) {
	f, h := fakeHarness()
	boom := errors.New("boom")
	f.FailNext(OpRestore, boom)
	if _, err := f.Apply(context.Background(), render(false, web)); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if o := owned(h); o != "" {
		t.Errorf("failed Apply left:\n%s", o)
	}
	mustApply(t, h, render(false, web))
}

func TestApplyRefusesOtherPrefix(t *testing.T) {
	f := NewFake(prefix)
	rs := render(false, web)
	rs.Prefix = "OTHER"
	if _, err := f.Apply(context.Background(), rs); !errors.Is(err, netops.ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
	if f.Calls(OpSave) != 0 {
		t.Error("Apply read the table before checking the prefix")
	}
}

func TestSplitSave(t *testing.T) {
	f, h := fakeHarness()
	if err := f.Restore(kubeProxy); err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, render(true, web))
	o, fo := splitSave(f.Save())
	for line := range strings.Lines(o) {
		if strings.Contains(line, "KUBE") || strings.Contains(line, "RAVELX") {
			t.Errorf("foreign line counted as ravel's: %q", line)
		}
	}
	if strings.Contains(fo, "RAVEL-") || strings.Contains(fo, "-j RAVEL\n") {
		t.Errorf("ravel's line counted as foreign:\n%s", fo)
	}
}
