package reconcile

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/internal/golden"
	"github.com/ravel-lb/ravel/netops"
)

// goldenConfig is a director with static and Kubernetes services exercising every option a
// plan can show: tcp+udp, thresholds, scheduler flags, tunnel and nat, sysctls.
func goldenConfig() []cfgOpt {
	return []cfgOpt{
		withKubernetes(false),
		withSysctl("expire_nodest_conn", 1),
		withSysctl("sloppy_tcp", 1),
		withService("web", "10.54.213.247:80",
			withBackend("10.0.1.5", 3), withBackend("10.0.1.6", 1), withThresholds(1000, 200)),
		withService("dns", "10.54.213.247:53", withProtocols("tcp", "udp"), withScheduler("sh"), withFlags("sh-port"),
			withBackend("10.0.1.5", 1), withBackend("10.0.1.6", 1)),
		withService("api", "10.54.213.248:443", withForwarding("tunnel"), withScheduler("mh"), withFlags("mh-fallback", "mh-port"),
			withKube("prod", "api", "https")),
		withService("", "10.54.213.249:8080", withForwarding("nat"), withBackend("10.0.2.1:80", 2)),
	}
}

func TestPlanStringGolden(t *testing.T) {
	api := ref("prod", "api", "https")
	snapA := makeSnapshot(
		withNode("node-a", "10.1.0.1"), withPods(api, "node-a", 2, 0),
		withNode("node-b", "10.1.0.2"), withPods(api, "node-b", 1, 0),
		withNode("node-c", "10.1.0.3"), withPods(api, "node-c", 1, 0))
	// node-a lost a pod, node-b was cordoned, node-d joined.
	snapB := makeSnapshot(
		withNode("node-a", "10.1.0.1"), withPods(api, "node-a", 1, 0),
		withNode("node-b", "10.1.0.2", cordoned()), withPods(api, "node-b", 1, 0),
		withNode("node-c", "10.1.0.3"), withPods(api, "node-c", 1, 0),
		withNode("node-d", "10.1.0.4"), withPods(api, "node-d", 3, 0))

	cfg := makeConfig(t, goldenConfig()...)
	own := OwnedVIPs(cfg)
	opts := DiffOptions{Now: t0, DrainTimeout: 30 * time.Second, Owned: own}
	desiredA, _ := Desired(cfg, snapA, director)
	desiredB, _ := Desired(cfg, snapB, director)

	t.Run("from-empty", func(t *testing.T) {
		golden.Check(t, "plan-from-empty", Diff(desiredA, NewState("ravel0"), opts).String())
	})
	t.Run("no-changes", func(t *testing.T) {
		golden.Check(t, "plan-no-changes", Diff(desiredA, desiredA, opts).String())
	})
	t.Run("nodes-change", func(t *testing.T) {
		golden.Check(t, "plan-nodes-change", Diff(desiredB, desiredA, opts).String())
	})
	t.Run("config-change", func(t *testing.T) {
		// The operator removed dns, moved web to sh, replaced a backend, switched the unnamed
		// service from nat (port 80 behind 8080) to dr (which cannot rewrite ports, so the
		// backend moves to 8080) and changed a sysctl; a VIP of the previous pool is still
		// bound, and a destination left at weight 0 by an earlier run has drained for a minute.
		cfg2 := makeConfig(t,
			withKubernetes(false),
			withSysctl("expire_nodest_conn", 0),
			withService("web", "10.54.213.247:80", withScheduler("sh"), withFlags("sh-fallback"),
				withBackend("10.0.1.5", 3), withBackend("10.0.1.7", 1), withThresholds(1000, 200)),
			withService("api", "10.54.213.248:443", withForwarding("tunnel"), withScheduler("mh"), withFlags("mh-fallback", "mh-port"),
				withKube("prod", "api", "https")),
			withService("", "10.54.213.249:8080", withForwarding("dr"), withBackend("10.0.2.1:8080", 2)),
			withPool("10.54.213.250"))
		desired2, _ := Desired(cfg2, snapA, director)
		actual := copyState(desiredA)
		actual.VIPs[netip.MustParseAddr("10.54.213.250")] = true // bound by an earlier config
		actual.Services[skey("tcp 10.54.213.249:8080")].Dests[dkey("10.0.2.9:80")] = dest("10.0.2.9:80", 0, fwd(netops.ForwardNAT))
		o := opts
		o.Owned = OwnedVIPs(cfg2)
		o.Drains = drainsAt(map[DestRef]time.Time{drainRef("tcp 10.54.213.249:8080", "10.0.2.9:80"): t0.Add(-time.Minute)})
		golden.Check(t, "plan-config-change", Diff(desired2, actual, o).String())
	})
}

func TestPlanEmptyAndCounts(t *testing.T) {
	p := &Plan{}
	if !p.Empty() || p.String() != "no changes\n" {
		t.Errorf("empty plan: Empty() = %t, String() = %q", p.Empty(), p.String())
	}
	p = Diff(makeState(withVS("tcp 10.0.0.1:80", dests(dest("10.0.1.5:80", 1), dest("10.0.1.6:80", 1)))), makeState(), diffOpts(nil))
	want := map[OpKind]int{OpEnsureDevice: 1, OpAddService: 1, OpAddDest: 2, OpBindVIP: 1}
	if d := cmp.Diff(want, p.Counts()); d != "" {
		t.Errorf("Counts (-want +got):\n%s", d)
	}
	if p.Empty() {
		t.Error("Empty() = true for a plan with ops")
	}
}

func TestOpKindString(t *testing.T) {
	want := []string{"delete-service", "delete-destination", "unbind-vip", "set-sysctl", "update-service", "drain-destination",
		"update-destination", "ensure-device", "add-service", "add-destination", "bind-vip"}
	var got []string
	for k := OpDelService; k <= OpBindVIP; k++ {
		got = append(got, k.String())
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("OpKind names (-want +got):\n%s", d)
	}
}

func TestFlagNames(t *testing.T) {
	tests := []struct {
		sched string
		flags netops.SchedFlags
		want  string
	}{
		{"sh", 0, "none"},
		{"sh", netops.FlagSched1, "sh-fallback"},
		{"mh", netops.FlagSched1 | netops.FlagSched2, "mh-fallback,mh-port"},
		{"wrr", netops.FlagSched2, "sched-port"},
		{"sh", netops.FlagSched3, "0x20"},
	}
	for _, tt := range tests {
		if got := FlagNames(tt.sched, tt.flags); got != tt.want {
			t.Errorf("FlagNames(%s, %#x) = %q, want %q", tt.sched, uint32(tt.flags), got, tt.want)
		}
	}
}

// copyState returns a deep copy of st without names (as ReadActual would return it).
func copyState(st *State) *State {
	out := NewState(st.Device)
	for k, vs := range st.Services {
		c := &VirtualService{Service: vs.Service, Dests: map[netops.DestKey]netops.Destination{}}
		for dk, d := range vs.Dests {
			c.Dests[dk] = d
		}
		out.Services[k] = c
	}
	for a := range st.VIPs {
		out.VIPs[a] = true
	}
	for k, v := range st.Sysctls {
		out.Sysctls[k] = v
	}
	for k, v := range st.Stats {
		out.Stats[k] = v
	}
	return out
}

// TestPlanLogValue: a plan handed to slog is formatted only when the record is logged, and then
// as String formats it.
func TestPlanLogValue(t *testing.T) {
	p := &Plan{Ops: []Op{{Kind: OpAddService, Name: "web", Service: makeVS("tcp 10.0.0.1:80").Service}}}
	var _ slog.LogValuer = p
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	counting := &countingValuer{p: p}
	log.Debug("plan", "plan", counting)
	if counting.n != 0 {
		t.Errorf("a debug line at info level formatted the plan %d times", counting.n)
	}
	log.Info("plan", "plan", counting)
	if counting.n != 1 || !strings.Contains(buf.String(), "add service tcp 10.0.0.1:80 (web)") {
		t.Errorf("logged %d times: %s", counting.n, buf.String())
	}
}

type countingValuer struct {
	p *Plan
	n int
}

func (c *countingValuer) LogValue() slog.Value { c.n++; return c.p.LogValue() }

// TestOpStaysSmall: a plan from an empty kernel at 10,000 services × 20 is 210,000 additions,
// held twice while it is put in order; the fields few kinds have live in OpDetail. An Op that
// grows back past 144 bytes (it was 352 with them inline) should move them there.
func TestOpStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(Op{}); n > 144 {
		t.Fatalf("Op is %d bytes: keep the fields of the rare kinds in OpDetail", n)
	}
}
