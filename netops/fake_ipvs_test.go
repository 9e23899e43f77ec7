package netops

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFakeIPVSDumpGolden(t *testing.T) {
	f := NewFakeIPVS()
	must(t, f.AddService(makeService("udp 10.0.0.2:53", withSched("rr"))))
	must(t, f.AddService(makeService(vs)))
	must(t, f.AddService(makeService("tcp [2001:db8::1]:80", withSched("sh"), withFlags(FlagSched2))))
	must(t, f.AddDestination(vsKey, makeDest("10.0.1.6:80", withForward(ForwardNAT))))
	must(t, f.AddDestination(vsKey, makeDest("10.0.1.5:80", withWeight(3))))
	must(t, f.AddDestination(vsKey, makeDest("10.0.1.5:79", withForward(ForwardTunnel), withThresholds(9, 1))))
	want := `tcp 10.0.0.1:80 wrr flags=0x0
  -> 10.0.1.5:79 tunnel w=1 x=9 y=1
  -> 10.0.1.5:80 dr w=3 x=0 y=0
  -> 10.0.1.6:80 nat w=1 x=0 y=0
udp 10.0.0.2:53 rr flags=0x0
tcp [2001:db8::1]:80 sh flags=0x10
`
	if diff := cmp.Diff(want, f.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
	got, err := DumpIPVS(f)
	must(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DumpIPVS (-want +got):\n%s", diff)
	}
}

func TestFakeIPVSCountsAndLog(t *testing.T) {
	f := NewFakeIPVS()
	must(t, f.AddService(makeService(vs)))
	must(t, f.AddDestination(vsKey, makeDest("10.0.1.5:80")))
	_ = f.AddDestination(vsKey, makeDest("10.0.1.5:80")) // ErrExist, still a call
	_, _ = f.Services()
	if diff := cmp.Diff(map[string]int{"AddService": 1, "AddDestination": 2, "Services": 1}, f.CallCounts()); diff != "" {
		t.Errorf("CallCounts (-want +got):\n%s", diff)
	}
	wantLog := []string{
		"AddService tcp 10.0.0.1:80 wrr flags=0x0",
		"AddDestination tcp 10.0.0.1:80 -> 10.0.1.5:80 dr w=1 x=0 y=0",
		"AddDestination tcp 10.0.0.1:80 -> 10.0.1.5:80 dr w=1 x=0 y=0",
	}
	if diff := cmp.Diff(wantLog, f.Log()); diff != "" {
		t.Errorf("Log (-want +got):\n%s", diff)
	}
	f.Dump() // not a call
	f.ResetCalls()
	if n := f.Calls("AddService"); n != 0 || len(f.Log()) != 0 || len(f.CallCounts()) != 0 {
		t.Errorf("after ResetCalls: AddService=%d log=%v counts=%v", n, f.Log(), f.CallCounts())
	}
}

func TestFakeIPVSFailNext(t *testing.T) {
	f := NewFakeIPVS()
	boom := errors.New("boom")
	f.FailNext("AddService", boom)
	f.FailNext("AddService", fmt.Errorf("again: %w", ErrInvalid))
	if err := f.AddService(makeService(vs)); !errors.Is(err, boom) {
		t.Fatalf("first AddService: %v, want boom", err)
	}
	if err := f.AddService(makeService(vs)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second AddService: %v, want ErrInvalid", err)
	}
	if got := f.Dump(); got != "" {
		t.Fatalf("failed calls changed the state:\n%s", got)
	}
	must(t, f.AddService(makeService(vs)))
	if n := f.Calls("AddService"); n != 3 {
		t.Errorf("AddService calls = %d, want 3", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("FailNext of an unknown operation did not panic")
		}
	}()
	f.FailNext("AddServices", boom)
}

func TestFakeIPVSStats(t *testing.T) {
	f := NewFakeIPVS()
	must(t, f.AddService(makeService(vs)))
	must(t, f.AddDestination(vsKey, makeDest("10.0.1.5:80")))
	must(t, f.SetStats(makeKey(vs), destKey("10.0.1.5:80"), DestStats{ActiveConns: 4, InactiveConns: 2}))
	got, err := f.DestStats(makeKey(vs), destKey("10.0.1.5:80"))
	must(t, err)
	if diff := cmp.Diff(DestStats{ActiveConns: 4, InactiveConns: 2}, got); diff != "" {
		t.Errorf("DestStats (-want +got):\n%s", diff)
	}
	checkClass(t, "SetStats of a missing destination", f.SetStats(makeKey(vs), destKey("10.0.1.9:80"), DestStats{}), "notexist")
	// Updating a destination keeps its counters, as in the kernel.
	must(t, f.UpdateDestination(vsKey, makeDest("10.0.1.5:80", withWeight(5))))
	if got, _ := f.DestStats(makeKey(vs), destKey("10.0.1.5:80")); got.ActiveConns != 4 {
		t.Errorf("after UpdateDestination: %+v", got)
	}
}

func TestFakeIPVSSchedulers(t *testing.T) {
	f := NewFakeIPVS()
	f.SetSchedulers("rr")
	checkClass(t, "wrr after SetSchedulers(rr)", f.AddService(makeService(vs)), "notexist")
	checkClass(t, "rr", f.AddService(makeService(vs, withSched("rr"))), "ok")
}

func TestFakeIPVSErrorsNameTheObject(t *testing.T) {
	f := NewFakeIPVS()
	err := f.AddDestination(vsKey, makeDest("10.0.1.5:80"))
	if got, want := err.Error(), "add destination 10.0.1.5:80 to service tcp 10.0.0.1:80: does not exist"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if errors.Is(err, syscall.ESRCH) {
		t.Errorf("a fake error should not pretend to be an errno")
	}
}

func TestFakeIPVSConcurrent(t *testing.T) {
	f := NewFakeIPVS()
	must(t, f.AddService(makeService(vs)))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				d := makeDest(fmt.Sprintf("10.0.%d.%d:80", i+1, j+1))
				_ = f.AddDestination(vsKey, d)
				_, _ = f.Destinations(makeKey(vs))
				_ = f.Dump()
			}
		}()
	}
	wg.Wait()
	ds, err := f.Destinations(makeKey(vs))
	must(t, err)
	if len(ds) != 160 {
		t.Errorf("%d destinations, want 160", len(ds))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
