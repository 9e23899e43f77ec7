package netops

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The IPVS conformance suite: one table of behaviour cases run against FakeIPVS on every
// host (TestConformanceIPVSFake) and against the kernel in the QEMU guest
// (TestKernelConformanceIPVS), proving the fake refuses what the kernel refuses with the
// same error classes and reads back what the kernel reads back.

// ipvsStep is one call and the error class it must return (see errClass).
type ipvsStep struct {
	desc string
	do   func(IPVS) error
	want string
	// change is the step as an IPVS change, for the mutating steps: the batched pass of the
	// suite sends each run of them as one Apply.
	change *Change
}

type ipvsCase struct {
	name  string
	steps []ipvsStep
	dump  string // DumpIPVS after the steps
}

func addSvc(s Service, want string) ipvsStep {
	return ipvsStep{"AddService " + fmtService(s), func(v IPVS) error { return v.AddService(s) }, want,
		&Change{Kind: ChangeAddService, Service: s}}
}

func updSvc(s Service, want string) ipvsStep {
	return ipvsStep{"UpdateService " + fmtService(s), func(v IPVS) error { return v.UpdateService(s) }, want,
		&Change{Kind: ChangeUpdateService, Service: s}}
}

func delSvc(k string, want string) ipvsStep {
	return ipvsStep{"DelService " + k, func(v IPVS) error { return v.DelService(makeKey(k)) }, want,
		&Change{Kind: ChangeDelService, Service: Service{ServiceKey: makeKey(k)}}}
}

func addDst(k string, d Destination, want string) ipvsStep {
	return ipvsStep{"AddDestination " + fmtDest(makeKey(k), d),
		func(v IPVS) error { return v.AddDestination(makeKey(k), d) }, want,
		&Change{Kind: ChangeAddDest, Key: makeKey(k), Dest: d}}
}

func updDst(k string, d Destination, want string) ipvsStep {
	return ipvsStep{"UpdateDestination " + fmtDest(makeKey(k), d),
		func(v IPVS) error { return v.UpdateDestination(makeKey(k), d) }, want,
		&Change{Kind: ChangeUpdateDest, Key: makeKey(k), Dest: d}}
}

func delDst(k, d string, want string) ipvsStep {
	return ipvsStep{"DelDestination " + k + " -> " + d,
		func(v IPVS) error { return v.DelDestination(makeKey(k), destKey(d)) }, want,
		&Change{Kind: ChangeDelDest, Key: makeKey(k), Dest: Destination{DestKey: destKey(d)}}}
}

// listDst checks the error class of Destinations and, when it succeeds, that it returns
// exactly wantDests (formatted as in Dump, sorted).
func listDst(k string, want string, wantDests ...string) ipvsStep {
	return ipvsStep{"Destinations " + k, func(v IPVS) error {
		ds, err := v.Destinations(makeKey(k))
		// ListedDestinations reads the same in one dump, counters included; for a service
		// that is gone (deleted since Services listed it) the kernel's dump is empty, no error.
		lds, lstats, lerr := v.ListedDestinations(makeKey(k))
		if lerr != nil {
			return fmt.Errorf("ListedDestinations: %w", lerr)
		}
		if err == nil && !slices.Equal(ds, lds) || err != nil && len(lds) != 0 || len(lstats) != len(lds) {
			return fmt.Errorf("ListedDestinations = %v (%d stats), Destinations = %v, %v", lds, len(lstats), ds, err)
		}
		if err != nil {
			return err
		}
		got := strings.Split(strings.TrimSpace(FormatIPVS([]Service{{ServiceKey: makeKey(k)}},
			map[ServiceKey][]Destination{makeKey(k): ds})), "\n")[1:]
		if diff := cmp.Diff(wantDests, got, cmpopts.EquateEmpty()); diff != "" {
			return fmt.Errorf("destinations (-want +got):\n%s", diff)
		}
		return nil
	}, want, nil}
}

func stats(k, d string, want string) ipvsStep {
	return ipvsStep{"DestStats " + k + " -> " + d, func(v IPVS) error {
		s, err := v.DestStats(makeKey(k), destKey(d))
		if err == nil && s != (DestStats{}) {
			return fmt.Errorf("new destination has stats %+v, want zero", s)
		}
		return err
	}, want, nil}
}

const vs = "tcp 10.0.0.1:80"

var vsKey = makeKey(vs)

var ipvsCases = []ipvsCase{{
	name: "services and destinations read back",
	steps: []ipvsStep{
		addSvc(makeService(vs), "ok"),
		addSvc(makeService("udp 10.0.0.1:80", withSched("rr")), "ok"),
		addDst(vs, makeDest("10.0.1.5:80", withWeight(3)), "ok"),
		addDst(vs, makeDest("10.0.1.6:8080", withForward(ForwardTunnel), withThresholds(100, 10)), "ok"),
		addDst(vs, makeDest("10.0.1.7:80", withForward(ForwardNAT), withWeight(0)), "ok"),
		addDst(vs, makeDest("10.0.1.8:80", withWeight(MaxWeight), withThresholds(MaxWeight, MaxWeight)), "ok"),
		addDst("udp 10.0.0.1:80", makeDest("10.0.1.5:80"), "ok"),
		stats(vs, "10.0.1.5:80", "ok"),
	},
	dump: `tcp 10.0.0.1:80 wrr flags=0x0
  -> 10.0.1.5:80 dr w=3 x=0 y=0
  -> 10.0.1.6:8080 tunnel w=1 x=100 y=10
  -> 10.0.1.7:80 nat w=0 x=0 y=0
  -> 10.0.1.8:80 dr w=65535 x=65535 y=65535
udp 10.0.0.1:80 rr flags=0x0
  -> 10.0.1.5:80 dr w=1 x=0 y=0
`,
}, {
	name: "duplicates are ErrExist",
	steps: []ipvsStep{
		addSvc(makeService(vs), "ok"),
		addSvc(makeService(vs, withSched("rr")), "exist"),
		addSvc(makeService(vs, withSched("no-such-sched")), "exist"), // looked up before the scheduler
		addDst(vs, makeDest("10.0.1.5:80"), "ok"),
		addDst(vs, makeDest("10.0.1.5:80", withWeight(7)), "exist"),
	},
	dump: "tcp 10.0.0.1:80 wrr flags=0x0\n  -> 10.0.1.5:80 dr w=1 x=0 y=0\n",
}, {
	name: "a missing service is ErrNotExist",
	steps: []ipvsStep{
		updSvc(makeService(vs), "notexist"),
		delSvc(vs, "notexist"),
		listDst(vs, "notexist"),
		addDst(vs, makeDest("10.0.1.5:80"), "notexist"),
		updDst(vs, makeDest("10.0.1.5:80"), "notexist"),
		delDst(vs, "10.0.1.5:80", "notexist"),
		stats(vs, "10.0.1.5:80", "notexist"),
		addSvc(makeService("udp 10.0.0.1:80"), "ok"),
		listDst(vs, "notexist"), // another protocol is another service
	},
	dump: "udp 10.0.0.1:80 wrr flags=0x0\n",
}, {
	name: "a missing destination is ErrNotExist",
	steps: []ipvsStep{
		addSvc(makeService(vs), "ok"),
		addDst(vs, makeDest("10.0.1.5:80"), "ok"),
		updDst(vs, makeDest("10.0.1.5:81"), "notexist"),
		delDst(vs, "10.0.1.6:80", "notexist"),
		stats(vs, "10.0.1.5:81", "notexist"),
		delDst(vs, "10.0.1.5:80", "ok"),
		delDst(vs, "10.0.1.5:80", "notexist"),
		listDst(vs, "ok"),
	},
	dump: "tcp 10.0.0.1:80 wrr flags=0x0\n",
}, {
	name: "an unknown scheduler is ErrNotExist",
	steps: []ipvsStep{
		addSvc(makeService(vs, withSched("no-such-sched")), "notexist"),
		addSvc(makeService(vs), "ok"),
		updSvc(makeService(vs, withSched("no-such-sched")), "notexist"),
		updSvc(makeService(vs, withSched("")), "invalid"),
	},
	dump: "tcp 10.0.0.1:80 wrr flags=0x0\n",
}, {
	name: "weights outside 0..MaxWeight are ErrInvalid",
	steps: []ipvsStep{
		addSvc(makeService(vs), "ok"),
		addDst(vs, makeDest("10.0.1.5:80", withWeight(-1)), "invalid"),
		addDst(vs, makeDest("10.0.1.5:80", withWeight(MaxWeight+1)), "invalid"),
		addDst(vs, makeDest("10.0.1.5:80", withWeight(0)), "ok"),
		updDst(vs, makeDest("10.0.1.5:80", withWeight(-1)), "invalid"),
		updDst(vs, makeDest("10.0.1.5:80", withWeight(1<<16)), "invalid"),
		updDst(vs, makeDest("10.0.1.5:80", withWeight(9)), "ok"),
	},
	dump: "tcp 10.0.0.1:80 wrr flags=0x0\n  -> 10.0.1.5:80 dr w=9 x=0 y=0\n",
}, {
	name: "a lower threshold above the upper is ErrInvalid, even with no upper",
	steps: []ipvsStep{
		addSvc(makeService(vs), "ok"),
		addDst(vs, makeDest("10.0.1.5:80", withThresholds(10, 20)), "invalid"),
		addDst(vs, makeDest("10.0.1.5:80", withThresholds(0, 5)), "invalid"),
		addDst(vs, makeDest("10.0.1.5:80", withThresholds(MaxWeight+1, 0)), "invalid"),
		addDst(vs, makeDest("10.0.1.5:80", withThresholds(20, 20)), "ok"),
		updDst(vs, makeDest("10.0.1.5:80", withThresholds(20, 21)), "invalid"),
		updDst(vs, makeDest("10.0.1.5:80", withThresholds(0, 0)), "ok"),
	},
	dump: "tcp 10.0.0.1:80 wrr flags=0x0\n  -> 10.0.1.5:80 dr w=1 x=0 y=0\n",
}, {
	name: "updates keep the other half",
	steps: []ipvsStep{
		addSvc(makeService(vs, withSched("sh"), withFlags(FlagSched1|FlagSched2)), "ok"),
		addDst(vs, makeDest("10.0.1.5:80"), "ok"),
		updSvc(makeService(vs, withSched("mh"), withFlags(FlagSched2)), "ok"),
		updDst(vs, makeDest("10.0.1.5:80", withForward(ForwardTunnel), withWeight(4), withThresholds(50, 5)), "ok"),
		listDst(vs, "ok", "  -> 10.0.1.5:80 tunnel w=4 x=50 y=5"),
	},
	dump: "tcp 10.0.0.1:80 mh flags=0x10\n  -> 10.0.1.5:80 tunnel w=4 x=50 y=5\n",
}, {
	name: "deleting a service deletes its destinations",
	steps: []ipvsStep{
		addSvc(makeService(vs), "ok"),
		addDst(vs, makeDest("10.0.1.5:80"), "ok"),
		addSvc(makeService("tcp 10.0.0.2:80"), "ok"),
		addDst("tcp 10.0.0.2:80", makeDest("10.0.1.5:80"), "ok"),
		delSvc(vs, "ok"),
		addSvc(makeService(vs, withSched("rr")), "ok"),
		listDst(vs, "ok"),
		listDst("tcp 10.0.0.2:80", "ok", "  -> 10.0.1.5:80 dr w=1 x=0 y=0"),
	},
	dump: "tcp 10.0.0.1:80 rr flags=0x0\ntcp 10.0.0.2:80 wrr flags=0x0\n  -> 10.0.1.5:80 dr w=1 x=0 y=0\n",
}, {
	name: "addresses that are not unicast are ErrInvalid",
	// The namespace has lo up (a fresh one with lo down refuses every IPv4 destination).
	steps: []ipvsStep{
		addSvc(makeService(vs), "ok"),
		addDst(vs, makeDest("0.0.0.0:80"), "invalid"),
		addDst(vs, makeDest("0.1.2.3:80"), "ok"), // the rest of 0.0.0.0/8 is unicast to 6.1
		addDst(vs, makeDest("224.0.0.1:80"), "invalid"),
		addDst(vs, makeDest("255.255.255.255:80"), "invalid"),
		addDst(vs, makeDest("[2001:db8::5]:80"), "invalid"),
		addDst(vs, makeDest("[::ffff:10.0.1.5]:80"), "invalid"),
	},
	dump: "tcp 10.0.0.1:80 wrr flags=0x0\n  -> 0.1.2.3:80 dr w=1 x=0 y=0\n",
}, {
	name: "what ravel never programs is ErrInvalid",
	steps: []ipvsStep{
		addSvc(makeService(vs, withRawProto(132)), "invalid"), // sctp
		addSvc(makeService(vs, withFlags(0x1)), "invalid"),    // persistent
		addSvc(makeService(vs, withFlags(0x2)), "invalid"),    // hashed
		addSvc(makeService("tcp [::ffff:10.0.0.1]:80"), "invalid"),
		addSvc(makeService(vs), "ok"),
		addDst(vs, makeDest("10.0.1.5:80", withForward(7)), "invalid"),
	},
	dump: "tcp 10.0.0.1:80 wrr flags=0x0\n",
}, {
	name: "ipv6",
	steps: []ipvsStep{
		addSvc(makeService("tcp [2001:db8::1]:443", withSched("rr")), "ok"),
		addDst("tcp [2001:db8::1]:443", makeDest("[2001:db8::10]:443"), "ok"),
		addDst("tcp [2001:db8::1]:443", makeDest("[2001:db8::11]:8443", withForward(ForwardNAT)), "ok"),
		addDst("tcp [2001:db8::1]:443", makeDest("10.0.1.5:443"), "invalid"),
		addDst("tcp [2001:db8::1]:443", makeDest("[fe80::1]:443"), "invalid"),
		addDst("tcp [2001:db8::1]:443", makeDest("[ff02::1]:443"), "invalid"),
	},
	dump: "tcp [2001:db8::1]:443 rr flags=0x0\n  -> [2001:db8::10]:443 dr w=1 x=0 y=0\n  -> [2001:db8::11]:8443 nat w=1 x=0 y=0\n",
}, {
	name: "scheduler flags read back without kernel bits",
	steps: []ipvsStep{
		addSvc(makeService(vs, withSched("sh"), withFlags(FlagSched1|FlagSched2)), "ok"),
		addSvc(makeService("tcp 10.0.0.2:80", withSched("mh"), withFlags(FlagSched1|FlagSched2|FlagSched3)), "ok"),
		addSvc(makeService("tcp 10.0.0.3:80", withSched("wrr"), withFlags(FlagSched1)), "ok"), // kept, unused
	},
	dump: "tcp 10.0.0.1:80 sh flags=0x18\ntcp 10.0.0.2:80 mh flags=0x38\ntcp 10.0.0.3:80 wrr flags=0x8\n",
}, {
	name:  "every scheduler of the kernel",
	steps: everySchedulerSteps(),
	dump:  everySchedulerDump(),
}}

func everySchedulerSteps() []ipvsStep {
	var steps []ipvsStep
	for i, s := range KernelSchedulers {
		steps = append(steps, addSvc(makeService(fmt.Sprintf("tcp 10.0.0.1:%d", 1000+i), withSched(s)), "ok"))
	}
	return steps
}

func everySchedulerDump() string {
	var b strings.Builder
	for i, s := range KernelSchedulers {
		fmt.Fprintf(&b, "tcp 10.0.0.1:%d %s flags=0x0\n", 1000+i, s)
	}
	return b.String()
}

// bigBatchCase is one run of more changes than a netlink write carries (batchSize), with a
// refused change in the middle of the second write: the writes that follow still apply, and
// the refused one is the one reported.
func bigBatchCase() ipvsCase {
	c := ipvsCase{name: "a batch over several writes, one change refused in the middle"}
	c.steps = append(c.steps, addSvc(makeService(vs), "ok"))
	var dump strings.Builder
	dump.WriteString("tcp 10.0.0.1:80 wrr flags=0x0\n")
	for i := range 2*batchSize + 10 {
		if i == batchSize+7 {
			c.steps = append(c.steps, addDst("tcp 10.0.0.9:80", makeDest("10.0.9.9:80"), "notexist"))
		}
		addr := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
		c.steps = append(c.steps, addDst(vs, makeDest(addr+":80", withWeight(i%5+1)), "ok"))
	}
	// Dump's order: by address.
	var lines []string
	for i := range 2*batchSize + 10 {
		lines = append(lines, fmt.Sprintf("  -> 10.1.%d.%d:80 dr w=%d x=0 y=0\n", i/250, i%250+1, i%5+1))
	}
	slices.SortFunc(lines, func(a, b string) int { return destKey(strings.Fields(a)[1]).Compare(destKey(strings.Fields(b)[1])) })
	for _, l := range lines {
		dump.WriteString(l)
	}
	c.dump = dump.String()
	return c
}

// conformanceIPVS runs every case against a fresh IPVS from newIPVS twice: each step by its
// own method, then each run of mutating steps as one Apply (a batch), which must answer each
// change with the same error class and leave the same state.
func conformanceIPVS(t *testing.T, newIPVS func(t *testing.T) IPVS) {
	for _, tc := range append(slices.Clone(ipvsCases), bigBatchCase()) {
		t.Run(tc.name, func(t *testing.T) {
			v := newIPVS(t)
			for i, st := range tc.steps {
				checkClass(t, fmt.Sprintf("step %d: %s", i, st.desc), st.do(v), st.want)
			}
			checkDump(t, v, tc.dump)
		})
		t.Run(tc.name+" (batched)", func(t *testing.T) {
			v := newIPVS(t)
			for i := 0; i < len(tc.steps); {
				if tc.steps[i].change == nil {
					checkClass(t, fmt.Sprintf("step %d: %s", i, tc.steps[i].desc), tc.steps[i].do(v), tc.steps[i].want)
					i++
					continue
				}
				start := i
				var changes []Change
				for ; i < len(tc.steps) && tc.steps[i].change != nil; i++ {
					changes = append(changes, *tc.steps[i].change)
				}
				errs := v.Apply(changes)
				if len(errs) != len(changes) {
					t.Fatalf("Apply of %d changes returned %d errors", len(changes), len(errs))
				}
				for j, err := range errs {
					st := tc.steps[start+j]
					checkClass(t, fmt.Sprintf("step %d (batch of %d from step %d): %s", start+j, len(changes), start, st.desc), err, st.want)
				}
			}
			checkDump(t, v, tc.dump)
		})
	}
}

func checkDump(t *testing.T, v IPVS, want string) {
	t.Helper()
	got, err := DumpIPVS(v)
	if err != nil {
		t.Fatalf("DumpIPVS: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state after the steps (-want +got):\n%s", diff)
	}
}

func TestConformanceIPVSFake(t *testing.T) {
	conformanceIPVS(t, func(*testing.T) IPVS { return NewFakeIPVS() })
}
