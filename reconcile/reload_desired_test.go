package reconcile

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPropertyDesiredReloadMatchesDesired: for 300 random pairs of configs, the second a
// reload of the first that edits, moves, re-protocols or retargets some services,
// DesiredReload from the first's desired state gives what DesiredChecked gives for the
// second, and its keys include every service whose desired state changed.
func TestPropertyDesiredReloadMatchesDesired(t *testing.T) {
	vips := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	snap := makeSnapshot(withNode("n1", "10.70.0.1"), withNode("n2", "10.70.0.2"),
		withPods(ref("default", "web", ""), "n1", 2, 0), withPods(ref("default", "web", ""), "n2", 1, 1),
		withPods(ref("default", "api", ""), "n2", 3, 0))
	incremental := 0
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 0x7e10ad))
		n := 1 + r.IntN(12)
		service := func(i int) cfgOpt {
			port := 80 + i
			if r.IntN(5) == 0 {
				port += 1000 // moved
			}
			var opts []svcOpt
			switch r.IntN(4) {
			case 0:
				opts = append(opts, withKube("default", []string{"web", "api", "gone"}[r.IntN(3)], ""))
			default:
				for b := range 1 + r.IntN(4) {
					opts = append(opts, withBackend(fmt.Sprintf("10.1.%d.%d:%d", i, b+1, port), r.IntN(4)))
				}
			}
			if r.IntN(3) == 0 {
				opts = append(opts, withProtocols([]string{"tcp", "udp"}[:1+r.IntN(2)]...))
			}
			if r.IntN(3) == 0 {
				opts = append(opts, withScheduler([]string{"wrr", "rr", "sh", "mh"}[r.IntN(4)]))
			}
			if r.IntN(4) == 0 {
				opts = append(opts, withThresholds(100+r.IntN(10), 10))
			}
			// The VIP stays (the pool's order follows the services'), the port may move.
			return withService(fmt.Sprintf("s%d", i), fmt.Sprintf("%s:%d", vips[i%len(vips)], port), opts...)
		}
		base := []cfgOpt{withKubernetes(false), withPool(vips...)}
		if r.IntN(4) == 0 {
			base = append(base, withSysctl("conntrack", 1))
		}
		var a, b []cfgOpt
		for i := range n {
			s := service(i)
			a = append(a, s)
			if r.IntN(3) == 0 {
				s = service(i) // this one changes (or, by chance, stays)
			}
			b = append(b, s)
		}
		if r.IntN(10) == 0 {
			b = append(b, service(n)) // one more service: not incremental
		}
		old := makeConfig(t, append(base, a...)...)
		cfg := makeConfig(t, append(base, b...)...)
		prev, _ := DesiredChecked(old, snap, director, nil)
		want, _ := DesiredChecked(cfg, snap, director, nil)
		got, _, keys, _, ok := DesiredReload(old, cfg, prev, snap, director, nil)
		if len(b) != len(a) {
			if ok {
				t.Errorf("seed %d: another number of services, and DesiredReload computed incrementally", seed)
			}
			continue
		}
		if !ok {
			t.Errorf("seed %d: only services differ, and DesiredReload refused", seed)
			continue
		}
		incremental++
		if d := cmp.Diff(want, got, cmpOpts); d != "" {
			t.Errorf("seed %d: DesiredReload differs from DesiredChecked (-want +got):\n%s", seed, d)
		}
		inKeys := map[any]bool{}
		for _, k := range keys {
			inKeys[k] = true
		}
		for _, k := range ChangedServices(prev, want) {
			if !inKeys[k] {
				t.Errorf("seed %d: %s changed and is not among the keys", seed, k)
			}
		}
		if prevAgain, _ := DesiredChecked(old, snap, director, nil); !cmp.Equal(prev, prevAgain, cmpOpts) {
			t.Errorf("seed %d: DesiredReload modified prev", seed)
		}
	}
	if incremental < 200 {
		t.Errorf("only %d of 300 cases were incremental", incremental)
	}
}
