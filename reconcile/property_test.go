package reconcile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/netops"
)

// gen draws random states from a small universe, so that desired and actual overlap a lot:
// three owned VIPs and a foreign one, two ports, two protocols, six realservers.
type gen struct{ r *rand.Rand }

var (
	propOwned   = []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	propForeign = "192.168.9.9"
	propScheds  = []string{"wrr", "rr", "sh", "mh", "lc"}
	propSysctls = []string{"net/ipv4/vs/conntrack", "net/ipv4/vs/sloppy_tcp", "net/ipv4/vs/expire_nodest_conn", "net/ipv4/vs/sync_threshold"}
)

func (g gen) pick(p float64) bool { return g.r.Float64() < p }

func (g gen) service(vip string, port uint16, proto netops.Proto) *VirtualService {
	vs := &VirtualService{
		Service: netops.Service{
			ServiceKey: netops.ServiceKey{VIP: netip.MustParseAddr(vip), Port: port, Proto: proto},
			Scheduler:  propScheds[g.r.IntN(len(propScheds))],
			Flags:      netops.SchedFlags(g.r.IntN(4)) * netops.FlagSched1, // 0, SCHED1, SCHED2, both
		},
		Dests: map[netops.DestKey]netops.Destination{},
	}
	for i := range 6 {
		if !g.pick(0.5) {
			continue
		}
		dport := port
		if g.pick(0.2) {
			dport = 8080
		}
		upper := uint32(g.r.IntN(3)) * uint32(g.r.IntN(50))
		d := netops.Destination{
			DestKey: netops.DestKey{Addr: netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), Port: dport},
			Weight:  g.r.IntN(5),
			Forward: netops.Forward(g.r.IntN(3)),
			Upper:   upper,
		}
		if upper > 0 {
			d.Lower = uint32(g.r.IntN(int(upper) + 1))
		}
		vs.Dests[d.DestKey] = d
	}
	return vs
}

// state draws services over the owned VIPs and, with foreign, the foreign one.
func (g gen) state(device string, foreign bool) *State {
	st := NewState(device)
	vips := propOwned
	if foreign {
		vips = append(slices.Clone(vips), propForeign)
	}
	for _, vip := range vips {
		for _, port := range []uint16{80, 443} {
			for _, proto := range []netops.Proto{netops.TCP, netops.UDP} {
				if g.pick(0.35) {
					vs := g.service(vip, port, proto)
					vs.Name = fmt.Sprintf("svc-%s-%d", vip, port)
					st.Services[vs.ServiceKey] = vs
				}
			}
		}
	}
	return st
}

// program puts st's services into the fake and their VIPs (plus noise) on the device.
func (g gen) program(t *testing.T, f fakes, st *State, device string) {
	t.Helper()
	for _, k := range st.SortedServiceKeys() {
		vs := st.Services[k]
		if err := f.ipvs.AddService(vs.Service); err != nil {
			t.Fatal(err)
		}
		for _, dk := range sortedDestKeys(vs.Dests) {
			if err := f.ipvs.AddDestination(k, vs.Dests[dk]); err != nil {
				t.Fatal(err)
			}
			if g.pick(0.4) {
				s := netops.DestStats{ActiveConns: g.r.IntN(3), InactiveConns: g.r.IntN(3)}
				if err := f.ipvs.SetStats(k, dk, s); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if device != "lo" && g.pick(0.3) {
		return // the device does not exist yet
	}
	var addrs []netip.Prefix
	for _, a := range append(slices.Clone(propOwned), propForeign, "192.168.9.10") {
		if g.pick(0.5) {
			addrs = append(addrs, netip.PrefixFrom(netip.MustParseAddr(a), 32))
		}
	}
	if device == "lo" {
		for _, p := range addrs {
			if err := f.links.AddAddr("lo", p); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	f.links.AddDevice(device, "dummy", true, addrs...)
}

func TestPropertyDiffApplyConverges(t *testing.T) {
	own := owned(propOwned...)
	for seed := range uint64(500) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := gen{rand.New(rand.NewPCG(seed, 0xba1a9ce))}
			device := "ravel0"
			if g.pick(0.2) {
				device = "lo"
			}
			f := newFakes()
			g.program(t, f, g.state(device, true), device)
			for _, k := range propSysctls {
				if g.pick(0.5) {
					if err := f.sysctl.Set(k, fmt.Sprint(g.r.IntN(3))); err != nil {
						t.Fatal(err)
					}
				}
			}
			foreignBefore := foreignDump(f.ipvs.Dump())
			foreignAddr := strings.Contains(f.links.Dump(), "192.168.9.10/32")

			desired := g.state(device, true)
			for _, vs := range desired.Services {
				desired.VIPs[vs.VIP] = true
			}
			for _, k := range propSysctls {
				if g.pick(0.5) {
					desired.Sysctls[k] = fmt.Sprint(g.r.IntN(3))
				}
			}
			drains := &Drains{}
			opts := DiffOptions{Now: t0, DrainTimeout: time.Duration(g.r.IntN(2)) * 30 * time.Second, Drains: drains, Owned: own}

			// Cycle 1: the fake must take every op of the plan.
			actual := readActual(t, f, device, own, desired)
			p := Diff(desired, actual, opts)
			checkPhases(t, p)
			checkDiffServices(t, desired, actual, opts, p)
			if err := Apply(f.kernel(), p); err != nil {
				t.Fatalf("the fake refused an op of a Diff plan: %v\nplan:\n%s", err, p)
			}
			drains.Applied(p, nil, opts.Now)

			// Cycle 2: nothing left but finishing drains.
			actual = readActual(t, f, device, own, desired)
			p = Diff(desired, actual, opts)
			for _, op := range p.Ops {
				if op.Kind != OpDelDest || op.Dest.Weight != 0 || desired.Services[op.Service.ServiceKey].Dests[op.Dest.DestKey] != (netops.Destination{}) {
					t.Errorf("second plan has more than drains: %s\nfull plan:\n%s", op, p)
				}
			}
			if err := Apply(f.kernel(), p); err != nil {
				t.Fatalf("second apply: %v", err)
			}
			drains.Applied(p, nil, opts.Now)

			// Cycle 3, past every drain timeout: converged, and the kernel holds what was
			// desired of the owned objects (checked independently of Diff).
			opts.Now = t0.Add(time.Hour)
			if p, err := cycle(t, f, desired, opts); err != nil {
				t.Fatalf("third cycle: %v\n%s", err, p)
			}
			converged(t, f, desired, opts)
			got := readActual(t, f, device, own, desired)
			if d := cmp.Diff(ownedView(desired, own), ownedView(got, own), cmpOpts); d != "" {
				t.Errorf("kernel differs from desired (-desired +kernel):\n%s", d)
			}
			for k, v := range desired.Sysctls {
				if !sysctlHolds(got.Sysctls[k], v) {
					t.Errorf("sysctl %s = %q, want %q", k, got.Sysctls[k], v)
				}
			}
			if after := foreignDump(f.ipvs.Dump()); after != foreignBefore {
				t.Errorf("foreign services changed:\n-%s\n+%s", foreignBefore, after)
			}
			if device != "lo" && len(desired.VIPs) > 0 && !f.links.IsUp(device) {
				t.Errorf("%s is not up", device)
			}
			if strings.Contains(f.links.Dump(), "192.168.9.10/32") != foreignAddr {
				t.Errorf("the foreign address changed:\n%s", f.links.Dump())
			}
		})
	}
}

// checkDiffServices asserts that DiffServices over every key gives Diff's service ops.
func checkDiffServices(t *testing.T, desired, actual *State, opts DiffOptions, full *Plan) {
	t.Helper()
	keys := append(desired.SortedServiceKeys(), actual.SortedServiceKeys()...)
	var want []Op
	for _, op := range full.Ops {
		switch op.Kind {
		case OpUnbindVIP, OpSetSysctl, OpEnsureDevice, OpBindVIP:
		default:
			want = append(want, op)
		}
	}
	got := DiffServices(desired, actual, keys, opts)
	if d := cmp.Diff(want, got.Ops, cmpOpts); d != "" {
		t.Errorf("DiffServices over every key differs from Diff (-Diff +DiffServices):\n%s", d)
	}
	if d := cmp.Diff(full.DrainsStarted, got.DrainsStarted, cmpOpts); d != "" {
		t.Errorf("DrainsStarted differ (-Diff +DiffServices):\n%s", d)
	}
}

type ownedState struct {
	Services map[netops.ServiceKey]netops.Service
	Dests    map[DestRef]netops.Destination
	VIPs     []netip.Addr
}

// ownedView is what st says of the owned objects, without names, stats or sysctls.
func ownedView(st *State, own map[netip.Addr]bool) ownedState {
	v := ownedState{Services: map[netops.ServiceKey]netops.Service{}, Dests: map[DestRef]netops.Destination{}}
	for k, vs := range st.Services {
		if !own[k.VIP] {
			continue
		}
		v.Services[k] = vs.Service
		for dk, d := range vs.Dests {
			v.Dests[DestRef{k, dk}] = d
		}
	}
	for _, a := range sortedAddrs(st.VIPs) {
		if own[a] {
			v.VIPs = append(v.VIPs, a)
		}
	}
	return v
}

// foreignDump keeps the lines of a FakeIPVS dump that belong to foreign services.
func foreignDump(dump string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.SplitAfter(dump, "\n") {
		if !strings.HasPrefix(l, " ") {
			in = strings.Contains(l, " "+propForeign+":")
		}
		if in {
			b.WriteString(l)
		}
	}
	return b.String()
}
