package reconcile

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ravel-lb/ravel/netops"
)

// DiffOptions are the inputs of Diff besides the two states.
type DiffOptions struct {
	// Now is the current time; Diff never reads the clock.
	Now time.Time
	// DrainTimeout is how long a leaving destination stays at weight 0 before it is deleted
	// even if it still has connections.
	DrainTimeout time.Duration
	// Drains are the destinations ravel drains and since when; nil knows of none. Diff only
	// reads them.
	Drains *Drains
	// Owned is the vipPool: services and addresses outside it are never touched.
	Owned map[netip.Addr]bool
}

// Diff compares desired with actual and returns the plan that makes actual desired: deletions
// and in-place edits first, additions last. Only objects whose VIP is in opts.Owned are
// considered. A weight change is an in-place edit, never a delete and add, so established
// connections survive; a destination that leaves is drained (weight 0 at once, deleted after
// DrainTimeout or as soon as it has no connections).
func Diff(desired, actual *State, opts DiffOptions) *Plan {
	list := make([]netops.ServiceKey, 0, max(len(desired.Services), len(actual.Services)))
	for k := range desired.Services {
		list = append(list, k)
	}
	for k := range actual.Services {
		if _, both := desired.Services[k]; !both {
			list = append(list, k)
		}
	}
	slices.SortFunc(list, netops.ServiceKey.Compare)

	var b builder
	b.services(desired, actual, list, opts)
	b.vips(desired, actual, opts)
	b.sysctls(desired, actual)
	return b.plan()
}

// DiffServices is Diff restricted to the given virtual services: what a change to a few
// Kubernetes services needs, at a cost that does not grow with the number of services.
// VIP bindings and sysctls are left to the full Diff.
func DiffServices(desired, actual *State, keys []netops.ServiceKey, opts DiffOptions) *Plan {
	var b builder
	b.services(desired, actual, sortedUnique(keys), opts)
	return b.plan()
}

// sortedUnique returns a sorted copy of keys without repeats.
func sortedUnique(keys []netops.ServiceKey) []netops.ServiceKey {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, netops.ServiceKey.Compare)
	return slices.Compact(keys)
}

// builder collects ops by kind. A plan runs the kinds in their declared order (deletions,
// then in-place edits, then additions; within a phase e.g. destinations are deleted before
// VIPs are unbound, devices are ensured before VIPs are bound), and the ops of one kind in
// the order the callers added them (key order).
//
// Bucketing by kind gives that order in linear time: a stable sort of the whole plan moved
// its large Op values O(n log² n) times, which dominated a plan of 200,000 additions. Each
// bucket is a list of fixed-size chunks, so that a large plan is copied once, into the
// result, rather than on every growth of a slice.
type builder struct {
	ops    [numOpKinds][][]Op
	drains []DestRef
}

// numOpKinds is the number of op kinds.
const numOpKinds = int(OpBindVIP) + 1

// opChunk is the number of ops in a chunk of a bucket.
const opChunk = 256

func (b *builder) add(op Op) {
	chunks := b.ops[op.Kind]
	if n := len(chunks); n == 0 || len(chunks[n-1]) == cap(chunks[n-1]) {
		size := opChunk
		if n == 0 {
			size = 8 // most plans are small
		}
		chunks = append(chunks, make([]Op, 0, size))
		b.ops[op.Kind] = chunks
	}
	last := &chunks[len(chunks)-1]
	*last = append(*last, op)
}

func (b *builder) plan() *Plan {
	n := 0
	for _, chunks := range b.ops {
		for _, c := range chunks {
			n += len(c)
		}
	}
	ops := make([]Op, 0, n)
	for _, chunks := range b.ops {
		for _, c := range chunks {
			ops = append(ops, c...)
		}
	}
	return &Plan{Ops: ops, DrainsStarted: b.drains}
}

func (b *builder) services(desired, actual *State, keys []netops.ServiceKey, opts DiffOptions) {
	for _, k := range keys {
		if !opts.Owned[k.VIP] {
			continue // foreign: never touched
		}
		d, a := desired.Services[k], actual.Services[k]
		switch {
		case d == nil && a == nil:
		case d == nil:
			b.add(Op{Kind: OpDelService, Name: a.Name, Service: a.Service})
		case a == nil:
			b.add(Op{Kind: OpAddService, Name: d.Name, Service: d.Service})
			for _, dk := range sortedDestKeys(d.Dests) {
				b.add(Op{Kind: OpAddDest, Name: d.Name, Service: d.Service, Dest: d.Dests[dk]})
			}
		default:
			b.service(d, a, actual, opts)
		}
	}
}

func (b *builder) service(d, a *VirtualService, actual *State, opts DiffOptions) {
	if d.Scheduler != a.Scheduler || d.Flags != a.Flags {
		b.add(Op{Kind: OpUpdateService, Name: d.Name, Service: d.Service, OpDetail: &OpDetail{OldSvc: a.Service}})
	}
	if d.Keep {
		return // its target's endpoints are not known yet: what forwards now stays
	}
	// Find the destinations that differ first and sort only those: most Diffs find none (the
	// periodic resync) or one (a snapshot that changed one node's endpoints).
	var changed, added []netops.DestKey
	kept := 0
	for dk, ad := range a.Dests {
		dd, ok := d.Dests[dk]
		if ok {
			kept++
		}
		if !ok || dd != ad {
			changed = append(changed, dk)
		}
	}
	if kept < len(d.Dests) {
		for dk := range d.Dests {
			if _, ok := a.Dests[dk]; !ok {
				added = append(added, dk)
			}
		}
	}
	slices.SortFunc(changed, netops.DestKey.Compare)
	slices.SortFunc(added, netops.DestKey.Compare)
	for _, dk := range changed {
		ad := a.Dests[dk]
		if dd, ok := d.Dests[dk]; ok {
			b.add(Op{Kind: OpUpdateDest, Name: d.Name, Service: d.Service, Dest: dd, OpDetail: &OpDetail{OldDest: ad}})
			continue
		}
		// Leaving: drain first, delete later.
		ref := DestRef{d.ServiceKey, dk}
		if !SchedZeroPolicy(d.Scheduler).CanDrain() {
			// At weight 0 it would keep its hash bucket and refuse every new client hashed
			// there (under dh: every client of the VIP) until the drain ends.
			b.add(Op{Kind: OpDelDest, Name: d.Name, Service: d.Service, Dest: ad, OpDetail: &OpDetail{Reason: "dh cannot drain: weight 0 refuses its clients"}})
			continue
		}
		if ad.Weight != 0 {
			drained := ad
			drained.Weight = 0
			b.add(Op{Kind: OpDrainDest, Name: d.Name, Service: d.Service, Dest: drained, OpDetail: &OpDetail{OldDest: ad}})
			continue
		}
		if _, known := opts.Drains.started(ref); !known {
			b.drains = append(b.drains, ref)
		}
		if reason, ok := opts.Drains.MayDelete(ref, actual, opts.Now, opts.DrainTimeout); ok {
			b.add(Op{Kind: OpDelDest, Name: d.Name, Service: d.Service, Dest: ad, OpDetail: &OpDetail{Reason: reason}})
		}
	}
	for _, dk := range added {
		b.add(Op{Kind: OpAddDest, Name: d.Name, Service: d.Service, Dest: d.Dests[dk]})
	}
}

func (b *builder) vips(desired, actual *State, opts DiffOptions) {
	for _, v := range sortedAddrs(actual.VIPs) {
		if opts.Owned[v] && !desired.VIPs[v] {
			b.add(Op{Kind: OpUnbindVIP, OpDetail: &OpDetail{VIP: v, Device: actual.Device}})
		}
	}
	added := false
	for _, v := range sortedAddrs(desired.VIPs) {
		if opts.Owned[v] && !actual.VIPs[v] {
			if !added && desired.Device != "lo" {
				b.add(Op{Kind: OpEnsureDevice, OpDetail: &OpDetail{Device: desired.Device}})
				added = true
			}
			b.add(Op{Kind: OpBindVIP, OpDetail: &OpDetail{VIP: v, Device: desired.Device}})
		}
	}
}

func (b *builder) sysctls(desired, actual *State) {
	keys := make([]string, 0, len(desired.Sysctls))
	for k := range desired.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !sysctlHolds(actual.Sysctls[k], desired.Sysctls[k]) {
			b.add(Op{Kind: OpSetSysctl, OpDetail: &OpDetail{Key: k, Value: desired.Sysctls[k], Old: actual.Sysctls[k]}})
		}
	}
}

// sysctlHolds reports whether a sysctl that reads as actual already has the desired value.
// Values are compared field by field, ignoring white space: the kernel prints a vector
// sysctl with tabs (net/ipv4/vs/sync_threshold reads "3\t50"), and proc_dointvec fills a
// vector from the front, keeping the values a write leaves out, so desired "5" is met by
// "5\t50" — comparing the strings would rewrite such a key on every cycle.
func sysctlHolds(actual, desired string) bool {
	a, d := strings.Fields(actual), strings.Fields(desired)
	if len(d) == 0 || len(d) > len(a) {
		return actual == desired
	}
	return slices.Equal(a[:len(d)], d)
}

// DiffReload is Diff for a reload of the config, at a cost that grows with what changed: the
// services keys (those whose desired state differs from the one last committed, see
// ChangedServices), and every VIP binding and sysctl. actual needs only those services (see
// ReadServices), the addresses on the device and the sysctls.
func DiffReload(desired, actual *State, keys []netops.ServiceKey, opts DiffOptions) *Plan {
	var b builder
	b.services(desired, actual, sortedUnique(keys), opts)
	b.vips(desired, actual, opts)
	b.sysctls(desired, actual)
	return b.plan()
}
