package reconcile

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/internal/golden"
	"github.com/ravel-lb/ravel/netops"
)

// cycle runs one full reconcile cycle on the fakes the way the daemon does: read the owned
// state, diff, apply. It returns the plan and Apply's error.
func cycle(t *testing.T, f fakes, desired *State, opts DiffOptions) (*Plan, error) {
	t.Helper()
	actual := readActual(t, f, desired.Device, opts.Owned, desired)
	p := Diff(desired, actual, opts)
	return p, Apply(f.kernel(), p)
}

// converged asserts that a fresh read of the fakes diffs empty against desired.
func converged(t *testing.T, f fakes, desired *State, opts DiffOptions) {
	t.Helper()
	actual := readActual(t, f, desired.Device, opts.Owned, desired)
	if p := Diff(desired, actual, opts); !p.Empty() || len(p.DrainsStarted) != 0 {
		t.Errorf("not converged: second diff is\n%sdrains started: %v", p, p.DrainsStarted)
	}
}

func TestApplyFromEmptyGolden(t *testing.T) {
	api := ref("prod", "api", "https")
	snap := makeSnapshot(
		withNode("node-a", "10.1.0.1"), withPods(api, "node-a", 2, 0),
		withNode("node-b", "10.1.0.2"), withPods(api, "node-b", 1, 0))
	cfg := makeConfig(t, goldenConfig()...)
	desired, _ := Desired(cfg, snap, director)
	opts := DiffOptions{Now: t0, DrainTimeout: 30 * time.Second, Owned: OwnedVIPs(cfg)}
	f := newFakes()

	p, err := cycle(t, f, desired, opts)
	if err != nil {
		t.Fatalf("Apply: %v\nplan:\n%s", err, p)
	}
	golden.Check(t, "apply-from-empty", f.dump(t, sortedKeys(desired.Sysctls)...))
	converged(t, f, desired, opts)

	// Applying never deletes in the first cycle and never calls an op twice.
	for _, call := range f.ipvs.Log() {
		if strings.HasPrefix(call, "Del") || strings.HasPrefix(call, "Update") {
			t.Errorf("unexpected call from empty: %s", call)
		}
	}
	if got, want := f.ipvs.Calls("AddDestination"), len(strings.Split(strings.TrimSpace(f.ipvs.Dump()), "->"))-1; got != want {
		t.Errorf("AddDestination called %d times for %d destinations", got, want)
	}
}

// A weight change reaches the kernel as one UpdateDestination: established connections of
// the destination survive (a delete and add would drop them).
func TestApplyWeightChangeInPlace(t *testing.T) {
	cfgA := makeConfig(t, withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 3), withBackend("10.0.1.6", 1)))
	cfgB := makeConfig(t, withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 5), withBackend("10.0.1.6", 1)))
	opts := DiffOptions{Now: t0, DrainTimeout: 30 * time.Second, Owned: OwnedVIPs(cfgA)}
	f := newFakes()
	a, _ := Desired(cfgA, nil, director)
	if _, err := cycle(t, f, a, opts); err != nil {
		t.Fatal(err)
	}
	if err := f.ipvs.SetStats(skey("tcp 10.0.0.1:80"), dkey("10.0.1.5:80"), netops.DestStats{ActiveConns: 10}); err != nil {
		t.Fatal(err)
	}
	f.ipvs.ResetCalls()
	f.links.ResetCalls()
	f.sysctl.ResetCalls()
	b, _ := Desired(cfgB, nil, director)
	if _, err := cycle(t, f, b, opts); err != nil {
		t.Fatal(err)
	}
	want := []string{"UpdateDestination tcp 10.0.0.1:80 -> 10.0.1.5:80 dr w=5 x=0 y=0"}
	if d := cmp.Diff(want, f.ipvs.Log()); d != "" {
		t.Errorf("IPVS calls (-want +got):\n%s", d)
	}
	if got := len(f.links.Log()) + len(f.sysctl.Log()); got != 0 {
		t.Errorf("unexpected link/sysctl calls: %v %v", f.links.Log(), f.sysctl.Log())
	}
	if st, err := f.ipvs.DestStats(skey("tcp 10.0.0.1:80"), dkey("10.0.1.5:80")); err != nil || st.ActiveConns != 10 {
		t.Errorf("destination lost its connections: %+v, %v", st, err)
	}
	converged(t, f, b, opts)
}

// A destination leaving goes through the whole drain on the fakes, driven as the daemon
// drives it: weight 0 first, deleted when its connections are gone.
func TestApplyDrainOnFakes(t *testing.T) {
	web, gone := skey("tcp 10.0.0.1:80"), dkey("10.0.1.6:80")
	cfgA := makeConfig(t, withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 3), withBackend("10.0.1.6", 1)))
	cfgB := makeConfig(t, withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 3)))
	drains := &Drains{}
	opts := DiffOptions{Now: t0, DrainTimeout: 30 * time.Second, Owned: OwnedVIPs(cfgA), Drains: drains}
	f := newFakes()
	a, _ := Desired(cfgA, nil, director)
	if _, err := cycle(t, f, a, opts); err != nil {
		t.Fatal(err)
	}
	if err := f.ipvs.SetStats(web, gone, netops.DestStats{ActiveConns: 2, InactiveConns: 1}); err != nil {
		t.Fatal(err)
	}
	b, _ := Desired(cfgB, nil, director)
	p, err := cycle(t, f, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"~ drain destination 10.0.1.6:80 of tcp 10.0.0.1:80 (web): weight 1 -> 0"}, lines(p)); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	drains.Applied(p, err, opts.Now)
	wantDump := "tcp 10.0.0.1:80 wrr flags=0x0\n  -> 10.0.1.5:80 dr w=3 x=0 y=0\n  -> 10.0.1.6:80 dr w=0 x=0 y=0\n"
	if d := cmp.Diff(wantDump, f.ipvs.Dump()); d != "" {
		t.Errorf("after drain (-want +got):\n%s", d)
	}
	// Connections still there, within the timeout: nothing to do.
	opts.Now = t0.Add(10 * time.Second)
	if p, _ := cycle(t, f, b, opts); !p.Empty() {
		t.Errorf("within the timeout: plan\n%s", p)
	}
	// The connections end: deleted at once.
	if err := f.ipvs.SetStats(web, gone, netops.DestStats{}); err != nil {
		t.Fatal(err)
	}
	p, err = cycle(t, f, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"- delete destination 10.0.1.6:80 from tcp 10.0.0.1:80 (web): drained, no connections left"}, lines(p)); d != "" {
		t.Errorf("plan (-want +got):\n%s", d)
	}
	converged(t, f, b, opts)
}

var errBoom = errors.New("boom")

func TestApplyContinuesAfterFailure(t *testing.T) {
	cfg := makeConfig(t, withSysctl("sloppy_tcp", 1),
		withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 3), withBackend("10.0.1.6", 1)),
		withService("api", "10.0.0.2:443", withBackend("10.0.1.7", 1), withBackend("10.0.1.8", 1)))
	desired, _ := Desired(cfg, nil, director)
	opts := DiffOptions{Now: t0, DrainTimeout: 30 * time.Second, Owned: OwnedVIPs(cfg)}
	f := newFakes()
	errAddr := errors.New("address refused")
	f.ipvs.FailNext("AddService", errBoom) // web: its destinations then fail too
	f.links.FailNext("AddAddr", errAddr)   // 10.0.0.1
	f.sysctl.FailNext("Set", netops.ErrInvalid)

	_, err := cycle(t, f, desired, opts)
	if err == nil {
		t.Fatal("Apply returned nil despite failures")
	}
	for _, want := range []error{errBoom, errAddr, netops.ErrInvalid, netops.ErrNotExist} {
		if !errors.Is(err, want) {
			t.Errorf("Apply's error does not wrap %v: %v", want, err)
		}
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Apply's error is not joined: %T", err)
	}
	// add service web, its two destinations, bind 10.0.0.1, set sloppy_tcp.
	if n := len(joined.Unwrap()); n != 5 {
		t.Errorf("Apply returned %d errors, want 5:\n%v", n, err)
	}
	for _, line := range []string{"+ add service tcp 10.0.0.1:80 (web): scheduler wrr: boom", "+ bind 10.0.0.1 on ravel0: address refused"} {
		if !strings.Contains(err.Error(), line) {
			t.Errorf("error does not name the op %q:\n%v", line, err)
		}
	}
	// Everything else was applied.
	wantIPVS := "tcp 10.0.0.2:443 wrr flags=0x0\n  -> 10.0.1.7:443 dr w=1 x=0 y=0\n  -> 10.0.1.8:443 dr w=1 x=0 y=0\n"
	if d := cmp.Diff(wantIPVS, f.ipvs.Dump()); d != "" {
		t.Errorf("IPVS after a partial apply (-want +got):\n%s", d)
	}
	// The next cycle repairs exactly what failed, and then the state has converged.
	p, err := cycle(t, f, desired, opts)
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	want := []string{
		"~ set sysctl net.ipv4.vs.sloppy_tcp: 0 -> 1",
		"+ ensure device ravel0 exists and is up",
		"+ add service tcp 10.0.0.1:80 (web): scheduler wrr",
		"+ add destination 10.0.1.5:80 to tcp 10.0.0.1:80 (web): dr weight 3",
		"+ add destination 10.0.1.6:80 to tcp 10.0.0.1:80 (web): dr weight 1",
		"+ bind 10.0.0.1 on ravel0",
	}
	if d := cmp.Diff(want, lines(p)); d != "" {
		t.Errorf("repair plan (-want +got):\n%s", d)
	}
	converged(t, f, desired, opts)
}

// Apply's error says which ops the kernel refused, by their index in the plan.
func TestApplyErrorNamesRefusedOps(t *testing.T) {
	f := newFakes()
	errAddr := errors.New("address refused")
	f.links.FailNext("AddAddr", errAddr)
	p := Diff(makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 1)))), makeState(), diffOpts(nil))
	err := Apply(f.kernel(), p)
	var ae *ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("Apply's error is a %T, want *ApplyError: %v", err, err)
	}
	var got []string
	for _, r := range ae.Refused {
		got = append(got, p.Ops[r.Index].String())
	}
	if diff := cmp.Diff([]string{"+ bind 10.0.0.1 on ravel0"}, got); diff != "" {
		t.Errorf("refused ops (-want +got):\n%s", diff)
	}
	if want := "+ bind 10.0.0.1 on ravel0: address refused"; err.Error() != want || !errors.Is(err, errAddr) {
		t.Errorf("Apply's error = %q, want %q wrapping the kernel's", err, want)
	}
	if err := Apply(f.kernel(), &Plan{}); err != nil {
		t.Errorf("a plan the kernel takes: Apply returned %#v, want nil", err)
	}
}

// Bind and unbind reach their goal even when someone else got there first.
func TestApplyBindUnbindIdempotent(t *testing.T) {
	f := newFakes()
	vip := netip.MustParseAddr("10.0.0.1")
	f.links.AddDevice("ravel0", "dummy", true, netip.PrefixFrom(vip, 32))
	p := &Plan{Ops: []Op{
		{Kind: OpBindVIP, OpDetail: &OpDetail{VIP: vip, Device: "ravel0"}},
		{Kind: OpUnbindVIP, OpDetail: &OpDetail{VIP: netip.MustParseAddr("10.0.0.2"), Device: "ravel0"}},
	}}
	if err := Apply(f.kernel(), p); err != nil {
		t.Errorf("Apply: %v", err)
	}
	// Other errors are reported.
	p = &Plan{Ops: []Op{{Kind: OpBindVIP, OpDetail: &OpDetail{VIP: vip, Device: "missing0"}}}}
	if err := Apply(f.kernel(), p); !errors.Is(err, netops.ErrNotExist) {
		t.Errorf("bind on a missing device: %v, want ErrNotExist", err)
	}
}

// seedForeign puts objects ravel does not own in the fakes: an IPVS service on a VIP outside
// the pool, a foreign address on ravel0, the pool VIP with another prefix length, a foreign
// device.
func seedForeign(t *testing.T, f fakes) {
	t.Helper()
	for _, s := range []netops.Service{
		{ServiceKey: skey("tcp 192.168.9.9:80"), Scheduler: "rr"},
		{ServiceKey: skey("udp 192.168.9.9:53"), Scheduler: "sh", Flags: netops.FlagSched1},
	} {
		if err := f.ipvs.AddService(s); err != nil {
			t.Fatal(err)
		}
		if err := f.ipvs.AddDestination(s.ServiceKey, dest("10.0.9.1:80", 7)); err != nil {
			t.Fatal(err)
		}
	}
	f.links.AddDevice("ravel0", "dummy", true, netip.MustParsePrefix("192.168.9.10/32"), netip.MustParsePrefix("10.0.0.1/24"))
	f.links.AddDevice("eth0", "veth", true, netip.MustParsePrefix("10.0.0.254/24"))
	f.ipvs.ResetCalls()
	f.links.ResetCalls()
}

const foreignIPVS = "udp 192.168.9.9:53 sh flags=0x8\n  -> 10.0.9.1:80 dr w=7 x=0 y=0\n" +
	"tcp 192.168.9.9:80 rr flags=0x0\n  -> 10.0.9.1:80 dr w=7 x=0 y=0\n"

func TestForeignObjectsSurvive(t *testing.T) {
	f := newFakes()
	seedForeign(t, f)
	pool := withPool("10.0.0.1", "10.0.0.2")
	steps := []*State{}
	for _, opts := range [][]cfgOpt{
		{pool, withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 3)), withService("api", "10.0.0.2:80", withBackend("10.0.1.6", 1))},
		{pool, withService("web", "10.0.0.1:80", withScheduler("sh"), withBackend("10.0.1.7", 3))},
		{pool}, // every service removed
	} {
		d, _ := Desired(makeConfig(t, opts...), nil, director)
		steps = append(steps, d)
	}
	own := owned("10.0.0.1", "10.0.0.2")
	for i, desired := range steps {
		opts := DiffOptions{Now: t0, DrainTimeout: 0, Owned: own}
		for range 2 { // the second cycle finishes drains (timeout 0)
			if _, err := cycle(t, f, desired, opts); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		converged(t, f, desired, opts)
		dump := f.ipvs.Dump()
		if !strings.Contains(dump, foreignIPVS) {
			t.Errorf("step %d: foreign services changed:\n%s", i, dump)
		}
		links := f.links.Dump()
		for _, want := range []string{"ravel0 dummy up\n", "  10.0.0.1/24\n", "  192.168.9.10/32\n", "eth0 veth up\n  10.0.0.254/24\n"} {
			if !strings.Contains(links, want) {
				t.Errorf("step %d: links lost %q:\n%s", i, want, links)
			}
		}
	}
	for _, call := range append(f.ipvs.Log(), f.links.Log()...) {
		if strings.Contains(call, "192.168.9.") || strings.Contains(call, "eth0") || strings.Contains(call, "/24") {
			t.Errorf("a call touched a foreign object: %s", call)
		}
	}
	if got := f.ipvs.Dump(); got != foreignIPVS {
		t.Errorf("after removing every service, IPVS holds (want only the foreign services):\n%s", got)
	}
}

func TestReadActualFiltersForeign(t *testing.T) {
	f := newFakes()
	seedForeign(t, f)
	web := skey("tcp 10.0.0.1:80")
	if err := f.ipvs.AddService(netops.Service{ServiceKey: web, Scheduler: "mh", Flags: netops.FlagSched2}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []netops.Destination{dest("10.0.1.5:80", 3, thr(30, 10)), dest("10.0.1.6:80", 0, fwd(netops.ForwardTunnel))} {
		if err := f.ipvs.AddDestination(web, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.ipvs.SetStats(web, dkey("10.0.1.6:80"), netops.DestStats{ActiveConns: 4, InactiveConns: 2}); err != nil {
		t.Fatal(err)
	}
	if err := f.links.AddAddr("ravel0", netip.MustParsePrefix("10.0.0.2/32")); err != nil {
		t.Fatal(err)
	}
	if err := f.links.AddAddr("eth0", netip.MustParsePrefix("10.0.0.3/32")); err != nil { // owned, other device
		t.Fatal(err)
	}

	got, err := ReadActual(f.kernel(), "ravel0", owned("10.0.0.1", "10.0.0.2", "10.0.0.3"), []string{"net/ipv4/vs/conntrack", "net/ipv4/vs/sync_threshold"})
	if err != nil {
		t.Fatal(err)
	}
	want := makeState(
		withBareVS("tcp 10.0.0.1:80", sched("mh"), flags(netops.FlagSched2),
			dests(dest("10.0.1.5:80", 3, thr(30, 10)), dest("10.0.1.6:80", 0, fwd(netops.ForwardTunnel)))),
		withVIP("10.0.0.2"), // 10.0.0.1/24 is not a VIP binding; 10.0.0.3 is on eth0
		// Counters are read only for the weight-0 destination: only a drained one needs them.
		withStats("tcp 10.0.0.1:80", "10.0.1.6:80", 4, 2),
		withSysctlValue("net/ipv4/vs/conntrack", "0"),
		withSysctlValue("net/ipv4/vs/sync_threshold", "3\t50"))
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("ReadActual (-want +got):\n%s", d)
	}
	// One request per owned service, counters included (issue 11 item 10): no per-service
	// check and no dump per weight-0 destination; foreign services are never read.
	for call, want := range map[string]int{"ListedDestinations": 1, "Destinations": 0, "DestStats": 0} {
		if n := f.ipvs.Calls(call); n != want {
			t.Errorf("%s called %d times, want %d", call, n, want)
		}
	}

	// A read of every service made before the owned VIPs were known (a director's start-up
	// read) gives the same state: the foreign services it holds are left out.
	all := ReadIPVS(context.Background(), f.ipvs, func(netops.Service) bool { return true })
	if all.Services() < 2 {
		t.Fatalf("the read of every service holds %d", all.Services())
	}
	got, err = ReadActualFrom(f.kernel(), all, "ravel0", owned("10.0.0.1", "10.0.0.2", "10.0.0.3"), []string{"net/ipv4/vs/conntrack", "net/ipv4/vs/sync_threshold"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("ReadActualFrom (-want +got):\n%s", d)
	}

	// A cancelled read is incomplete and says so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := ReadIPVS(ctx, f.ipvs, func(netops.Service) bool { return true }); !errors.Is(r.Err(), context.Canceled) || r.Services() != 0 {
		t.Errorf("a cancelled read: err %v, %d services", r.Err(), r.Services())
	}
}

func TestReadActualMissingDeviceAndErrors(t *testing.T) {
	f := newFakes()
	got, err := ReadActual(f.kernel(), "ravel0", owned("10.0.0.1"), nil)
	if err != nil {
		t.Fatalf("a missing device is not an error: %v", err)
	}
	if d := cmp.Diff(makeState(), got, cmpOpts); d != "" {
		t.Errorf("ReadActual (-want +got):\n%s", d)
	}

	f.ipvs.FailNext("Services", errBoom)
	f.sysctl.FailNext("Get", errBoom)
	got, err = ReadActual(f.kernel(), "ravel0", owned("10.0.0.1"), []string{"net/ipv4/vs/conntrack", "net/ipv4/vs/sloppy_tcp", "net/ipv4/vs/nonexistent"})
	if !errors.Is(err, errBoom) || !errors.Is(err, netops.ErrNotExist) {
		t.Errorf("ReadActual error = %v, want boom and ErrNotExist joined", err)
	}
	// What could be read is returned.
	if d := cmp.Diff(map[string]string{"net/ipv4/vs/sloppy_tcp": "0"}, got.Sysctls); d != "" {
		t.Errorf("sysctls (-want +got):\n%s", d)
	}
}

// A full cycle against the fakes converges for the sysctls ravel writes, including a
// vector key (sync_threshold holds two values; writing one keeps the other, as
// proc_dointvec does).
func TestApplySysctlsConverge(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  []cfgOpt
	}{
		{"plain keys", []cfgOpt{withSysctl("sloppy_tcp", 1), withSysctl("expire_nodest_conn", 1)}},
		{"colocated", []cfgOpt{withColocated()}},
		{"vector key", []cfgOpt{withSysctl("sync_threshold", 5)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := makeConfig(t, append(tc.cfg, withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 1)))...)
			desired, _ := Desired(cfg, nil, director)
			opts := DiffOptions{Now: t0, DrainTimeout: 30 * time.Second, Owned: OwnedVIPs(cfg)}
			f := newFakes()
			if _, err := cycle(t, f, desired, opts); err != nil {
				t.Fatal(err)
			}
			converged(t, f, desired, opts)
		})
	}
}
