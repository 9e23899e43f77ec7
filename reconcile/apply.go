package reconcile

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
)

// Kernel groups the netops interfaces a plan is applied through (real or fake).
type Kernel struct {
	IPVS   netops.IPVS
	Links  netops.Links
	Sysctl netops.Sysctl
}

// Apply executes plan in order. It does not stop at the first failure: every op is tried and
// every error is returned, as an *ApplyError, so one bad destination cannot keep the others
// from being programmed. The caller treats a non-nil error as "next cycle is a full resync".
//
// A run of consecutive IPVS ops goes to the kernel as one IPVS.Apply: many requests per
// netlink write instead of one round trip each, with the same order and the same per-op
// errors.
func Apply(k Kernel, plan *Plan) error {
	var refused []RefusedOp
	refuse := func(i int, err error) {
		refused = append(refused, RefusedOp{Index: i, Err: fmt.Errorf("%s: %w", plan.Ops[i].String(), err)})
	}
	for i := 0; i < len(plan.Ops); {
		if _, ok := ipvsChange(plan.Ops[i]); !ok {
			if err := applyOp(k, plan.Ops[i]); err != nil {
				refuse(i, err)
			}
			i++
			continue
		}
		// In pieces of applyChunk: the kernel writes 256 per batch anyway, and a plan of
		// 200,000 additions would otherwise hold a second copy of itself as changes.
		start := i
		changes := make([]netops.Change, 0, applyChunk)
		for ; i < len(plan.Ops) && len(changes) < applyChunk; i++ {
			c, ok := ipvsChange(plan.Ops[i])
			if !ok {
				break
			}
			changes = append(changes, c)
		}
		for j, err := range k.IPVS.Apply(changes) {
			if err != nil {
				refuse(start+j, err)
			}
		}
	}
	if refused == nil {
		return nil
	}
	return &ApplyError{Refused: refused}
}

// applyChunk is the most IPVS changes Apply hands over at once.
const applyChunk = 1024

// ipvsChange is op as an IPVS change, if it is one.
func ipvsChange(op Op) (netops.Change, bool) {
	key := op.Service.ServiceKey
	switch op.Kind {
	case OpDelService:
		return netops.Change{Kind: netops.ChangeDelService, Service: netops.Service{ServiceKey: key}}, true
	case OpDelDest:
		return netops.Change{Kind: netops.ChangeDelDest, Key: key, Dest: netops.Destination{DestKey: op.Dest.DestKey}}, true
	case OpUpdateService:
		return netops.Change{Kind: netops.ChangeUpdateService, Service: op.Service}, true
	case OpDrainDest, OpUpdateDest:
		return netops.Change{Kind: netops.ChangeUpdateDest, Key: key, Dest: op.Dest}, true
	case OpAddService:
		return netops.Change{Kind: netops.ChangeAddService, Service: op.Service}, true
	case OpAddDest:
		return netops.Change{Kind: netops.ChangeAddDest, Key: key, Dest: op.Dest}, true
	}
	return netops.Change{}, false
}

// ApplyError is Apply's error: the ops of the plan the kernel refused, in plan order. It
// reads, and unwraps, as the errors of those ops joined (errors.Join).
type ApplyError struct {
	Refused []RefusedOp
}

// RefusedOp is an op the kernel refused: its index in the plan's Ops and the error, which
// names the op.
type RefusedOp struct {
	Index int
	Err   error
}

func (e *ApplyError) Error() string { return errors.Join(e.Unwrap()...).Error() }

// Unwrap returns the error of each refused op.
func (e *ApplyError) Unwrap() []error {
	errs := make([]error, len(e.Refused))
	for i, r := range e.Refused {
		errs[i] = r.Err
	}
	return errs
}

// applyOp applies an op that is not an IPVS change (see ipvsChange).
func applyOp(k Kernel, op Op) error {
	x := op.Detail()
	switch op.Kind {
	case OpEnsureDevice:
		return k.Links.EnsureDummy(x.Device)
	case OpBindVIP:
		err := k.Links.AddAddr(x.Device, family.Of(x.VIP).Host(x.VIP))
		if errors.Is(err, netops.ErrExist) {
			return nil // bound meanwhile (e.g. by hand): the goal is reached
		}
		return err
	case OpUnbindVIP:
		err := k.Links.DelAddr(x.Device, family.Of(x.VIP).Host(x.VIP))
		if errors.Is(err, netops.ErrNotExist) {
			return nil
		}
		return err
	case OpSetSysctl:
		return k.Sysctl.Set(x.Key, x.Value)
	}
	return fmt.Errorf("unknown op kind %d", op.Kind)
}

// ReadVIPsAndSysctls adds to st the owned addresses bound on st.Device and the values of the
// sysctl keys: what ReadActual reads besides IPVS.
func ReadVIPsAndSysctls(k Kernel, st *State, owned map[netip.Addr]bool, sysctlKeys []string) error {
	var errs []error
	addrs, err := k.Links.Addrs(st.Device)
	if err != nil && !errors.Is(err, netops.ErrNotExist) {
		errs = append(errs, fmt.Errorf("list addresses of %s: %w", st.Device, err))
	}
	for _, p := range addrs {
		if owned[p.Addr()] && p == family.Of(p.Addr()).Host(p.Addr()) { // a /24 of a VIP is not its binding
			st.VIPs[p.Addr()] = true
		}
	}
	for _, key := range sysctlKeys {
		v, err := k.Sysctl.Get(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", key, err))
			continue
		}
		st.Sysctls[key] = v
	}
	return errors.Join(errs...)
}
