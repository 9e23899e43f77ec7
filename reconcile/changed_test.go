package reconcile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/ravel-lb/ravel/netops"
)

func TestChangedServices(t *testing.T) {
	prev := makeState(
		withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.1:80", 3), dest("10.0.1.2:80", 1))),
		withVS("tcp 10.0.0.1:443", named("tls"), dests(dest("10.0.1.1:443", 1))),
		withVS("udp 10.0.0.2:53", named("dns"), dests(dest("10.0.1.3:53", 1))),
		withVS("tcp 10.0.0.3:80", named("gone"), dests(dest("10.0.1.4:80", 1))),
	)
	next := makeState(
		withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.1:80", 5), dest("10.0.1.2:80", 1))), // a weight
		withVS("tcp 10.0.0.1:443", named("tls"), dests(dest("10.0.1.1:443", 1))),                       // the same
		withVS("udp 10.0.0.2:53", named("dns"), sched("sh"), dests(dest("10.0.1.3:53", 1))),            // a scheduler
		withVS("tcp 10.0.0.4:80", named("new"), dests(dest("10.0.1.5:80", 1))),                         // added
	)
	var got []string
	for _, k := range ChangedServices(prev, next) {
		got = append(got, k.String())
	}
	want := []string{"tcp 10.0.0.1:80", "udp 10.0.0.2:53", "tcp 10.0.0.3:80", "tcp 10.0.0.4:80"}
	if !slices.Equal(got, want) {
		t.Errorf("ChangedServices = %q, want %q", got, want)
	}
	if keys := ChangedServices(next, next); len(keys) != 0 {
		t.Errorf("ChangedServices of a state with itself = %v, want none", keys)
	}
	held := makeState(withVS("tcp 10.0.0.1:443", named("tls"), dests(dest("10.0.1.1:443", 1))))
	held.Services[skey("tcp 10.0.0.1:443")].Held = true
	if keys := ChangedServices(makeState(withVS("tcp 10.0.0.1:443", named("tls"), dests(dest("10.0.1.1:443", 1)))), held); len(keys) != 1 {
		t.Errorf("a service that became held is not a change: %v", keys)
	}
}

// TestPropertyReloadDiffMatchesFullDiff: from a kernel that holds exactly what was last
// committed (plus a foreign service), a reload's plan — the changed services read back one by
// one, DiffReload — leaves the kernel exactly as a full read and Diff would, for random
// committed and new desired states; and a full Diff afterwards finds nothing to do.
func TestPropertyReloadDiffMatchesFullDiff(t *testing.T) {
	own := owned(propOwned...)
	for seed := range uint64(300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := gen{rand.New(rand.NewPCG(seed, 0x4e10ad))}
			device := "ravel0"
			if g.pick(0.2) {
				device = "lo"
			}
			desire := func() *State {
				st := g.state(device, false)
				for _, vs := range st.Services {
					st.VIPs[vs.VIP] = true
				}
				for _, k := range propSysctls {
					if g.pick(0.5) {
						st.Sysctls[k] = fmt.Sprint(g.r.IntN(3))
					}
				}
				return st
			}
			committed, next := desire(), desire()
			if g.pick(0.3) { // a reload that changes a little: most services stay
				next = desire()
				for k, vs := range committed.Services {
					if g.pick(0.8) {
						next.Services[k] = vs
						next.VIPs[k.VIP] = true
					}
				}
			}
			foreign := &VirtualService{Service: netops.Service{ServiceKey: netops.ServiceKey{VIP: netip.MustParseAddr(propForeign), Port: 80, Proto: netops.TCP}, Scheduler: "rr"},
				Dests: map[netops.DestKey]netops.Destination{}}
			kernels := [2]fakes{newFakes(), newFakes()}
			for _, f := range kernels {
				programExactly(t, f, committed, foreign)
			}
			opts := func() DiffOptions {
				return DiffOptions{Now: t0, DrainTimeout: 0, Drains: &Drains{}, Owned: own}
			}

			// The reload path on kernels[0].
			f := kernels[0]
			keys := ChangedServices(committed, next)
			actual, err := ReadServices(f.kernel(), keys, device, committed, next)
			if err != nil {
				t.Fatal(err)
			}
			if err := ReadVIPsAndSysctls(f.kernel(), actual, own, slices.Sorted(mapKeys(next.Sysctls))); err != nil {
				t.Fatal(err)
			}
			p := DiffReload(next, actual, keys, opts())
			checkPhases(t, p)
			if err := Apply(f.kernel(), p); err != nil {
				t.Fatalf("reload plan refused: %v\n%s", err, p)
			}
			// The full path on kernels[1].
			full := Diff(next, readActual(t, kernels[1], device, own, next), opts())
			if err := Apply(kernels[1].kernel(), full); err != nil {
				t.Fatalf("full plan refused: %v\n%s", err, full)
			}
			sysKeys := slices.Sorted(mapKeys(next.Sysctls))
			if a, b := kernels[0].dump(t, sysKeys...), kernels[1].dump(t, sysKeys...); a != b {
				t.Errorf("the reload left another kernel than a full sync:\nreload plan:\n%s\nfull plan:\n%s\nreload:\n%s\nfull:\n%s", p, full, a, b)
			}
			// What is left is the second step of the drains both plans began.
			for _, op := range Diff(next, readActual(t, f, device, own, next), opts()).Ops {
				if op.Kind != OpDelDest || op.Dest.Weight != 0 || next.Services[op.Service.ServiceKey].Dests[op.Dest.DestKey] != (netops.Destination{}) {
					t.Errorf("a full Diff after the reload plans more than finishing drains: %s", op)
				}
			}
		})
	}
}

// programExactly puts st into f as a sync that applied it would leave it: its services and
// destinations, its VIPs on its device (created when st binds any), its sysctls; and the
// foreign service.
func programExactly(t *testing.T, f fakes, st *State, foreign *VirtualService) {
	t.Helper()
	for _, vs := range append([]*VirtualService{foreign}, servicesOf(st)...) {
		if err := f.ipvs.AddService(vs.Service); err != nil {
			t.Fatal(err)
		}
		for _, dk := range sortedDestKeys(vs.Dests) {
			if err := f.ipvs.AddDestination(vs.ServiceKey, vs.Dests[dk]); err != nil {
				t.Fatal(err)
			}
		}
	}
	var addrs []netip.Prefix
	for _, v := range sortedAddrs(st.VIPs) {
		addrs = append(addrs, netip.PrefixFrom(v, 32))
	}
	if st.Device == "lo" {
		for _, p := range addrs {
			if err := f.links.AddAddr("lo", p); err != nil {
				t.Fatal(err)
			}
		}
	} else if len(addrs) > 0 {
		f.links.AddDevice(st.Device, "dummy", true, addrs...)
	}
	for k, v := range st.Sysctls {
		if err := f.sysctl.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
}

func servicesOf(st *State) []*VirtualService {
	var out []*VirtualService
	for _, k := range st.SortedServiceKeys() {
		out = append(out, st.Services[k])
	}
	return out
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
