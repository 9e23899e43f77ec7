package reconcile

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/ravel-lb/ravel/netops"
)

// OpKind is what an Op does.
type OpKind int

// Op kinds, in the order a plan runs them: deletions, then in-place edits, then additions.
const (
	OpDelService OpKind = iota
	OpDelDest
	OpUnbindVIP
	OpSetSysctl
	OpUpdateService
	OpDrainDest
	OpUpdateDest
	OpEnsureDevice
	OpAddService
	OpAddDest
	OpBindVIP
)

// Op is one kernel change. Old holds the value being replaced for edits, so a plan can say
// "weight 3 -> 5".
//
// The fields only some kinds have are in OpDetail, which the kinds that add, delete or
// drain nothing else leave nil: a plan from an empty kernel at 10,000 services is 210,000
// additions, 352 bytes each with every field inline (74 MB, held twice while the plan is
// put in order), 144 bytes this way. Read them on the kinds that set them (see Detail).
type Op struct {
	Kind    OpKind
	Name    string // the service's label
	Service netops.Service
	Dest    netops.Destination
	*OpDetail
}

// OpDetail holds what an update, a drain, a deletion with a reason, a device, VIP or sysctl
// op says besides its service and destination.
type OpDetail struct {
	OldSvc  netops.Service     // OpUpdateService
	OldDest netops.Destination // OpUpdateDest, OpDrainDest
	VIP     netip.Addr         // OpBindVIP, OpUnbindVIP
	Device  string             // OpEnsureDevice, OpBindVIP, OpUnbindVIP
	Key     string             // OpSetSysctl
	Value   string
	Old     string // sysctl's old value; "" if unknown
	Reason  string // why a destination is deleted
}

// Detail is the op's OpDetail, empty rather than nil for the kinds that have none.
func (op Op) Detail() *OpDetail {
	if op.OpDetail == nil {
		return &OpDetail{}
	}
	return op.OpDetail
}

// Plan is an ordered list of kernel changes, readable by an operator through String.
type Plan struct {
	Ops []Op
	// DrainsStarted lists destinations found at weight 0 and not desired, whose drain ravel
	// did not start itself (e.g. after a restart): Drains.Applied starts their clock.
	DrainsStarted []DestRef
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Ops) == 0 }

// Counts returns how many ops of each kind the plan has.
func (p *Plan) Counts() map[OpKind]int {
	m := map[OpKind]int{}
	for _, op := range p.Ops {
		m[op.Kind]++
	}
	return m
}

// Summary is the plan in one line for logs and /status: the count of each kind of op in apply
// order ("2 add-service, 1 bind-vip"), or "no changes".
func (p *Plan) Summary() string {
	if p.Empty() {
		return "no changes"
	}
	c := p.Counts()
	var parts []string
	for k := OpDelService; k <= OpBindVIP; k++ {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
		}
	}
	return strings.Join(parts, ", ")
}

func (k OpKind) String() string {
	return [...]string{"delete-service", "delete-destination", "unbind-vip", "set-sysctl", "update-service", "drain-destination", "update-destination", "ensure-device", "add-service", "add-destination", "bind-vip"}[k]
}

// LogValue renders the plan as String does, for slog, which calls it only when the record is
// logged: pass the plan itself to a debug line, never plan.String(), which would format every
// op (20 MB for a first sync of 10,000 services) even when debug logging is off.
func (p *Plan) LogValue() slog.Value { return slog.StringValue(p.String()) }

// String renders the plan one op per line, prefixed "-" for removals, "~" for in-place edits
// and "+" for additions.
func (p *Plan) String() string {
	if p.Empty() {
		return "no changes\n"
	}
	var b strings.Builder
	for _, op := range p.Ops {
		b.WriteString(op.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func (op Op) String() string {
	svc := func(s netops.Service) string {
		// An unnamed service is labelled vip:port, which the key already says.
		if op.Name != "" && op.Name != netip.AddrPortFrom(s.VIP, s.Port).String() {
			return fmt.Sprintf("%s (%s)", s.ServiceKey, op.Name)
		}
		return s.ServiceKey.String()
	}
	x := op.Detail()
	switch op.Kind {
	case OpDelService:
		return fmt.Sprintf("- delete service %s", svc(op.Service))
	case OpDelDest:
		return fmt.Sprintf("- delete destination %s from %s: %s", op.Dest.DestKey, svc(op.Service), x.Reason)
	case OpUnbindVIP:
		return fmt.Sprintf("- unbind %s from %s", x.VIP, x.Device)
	case OpSetSysctl:
		// A vector sysctl reads back with tabs ("3\t50"): show its values on one line.
		old := strings.Join(strings.Fields(x.Old), " ")
		if old == "" {
			old = "?"
		}
		return fmt.Sprintf("~ set sysctl %s: %s -> %s", strings.ReplaceAll(x.Key, "/", "."), old, x.Value)
	case OpUpdateService:
		return fmt.Sprintf("~ update service %s: %s", svc(op.Service), serviceChanges(x.OldSvc, op.Service))
	case OpDrainDest:
		return fmt.Sprintf("~ drain destination %s of %s: weight %d -> 0", op.Dest.DestKey, svc(op.Service), x.OldDest.Weight)
	case OpUpdateDest:
		return fmt.Sprintf("~ update destination %s of %s: %s", op.Dest.DestKey, svc(op.Service), destChanges(x.OldDest, op.Dest))
	case OpEnsureDevice:
		return fmt.Sprintf("+ ensure device %s exists and is up", x.Device)
	case OpAddService:
		return fmt.Sprintf("+ add service %s: scheduler %s%s", svc(op.Service), op.Service.Scheduler, flagText(op.Service))
	case OpAddDest:
		d := op.Dest
		return fmt.Sprintf("+ add destination %s to %s: %s weight %d%s", d.DestKey, svc(op.Service), d.Forward, d.Weight, thresholdText(d))
	case OpBindVIP:
		return fmt.Sprintf("+ bind %s on %s", x.VIP, x.Device)
	}
	return fmt.Sprintf("? op %d", op.Kind)
}

func flagText(s netops.Service) string {
	if s.Flags == 0 {
		return ""
	}
	return " flags " + FlagNames(s.Scheduler, s.Flags)
}

// FlagNames spells scheduler flags the way the config does (sh-port, mh-fallback, ...).
func FlagNames(sched string, f netops.SchedFlags) string {
	var names []string
	prefix := sched
	if prefix != "sh" && prefix != "mh" {
		prefix = "sched"
	}
	if f&netops.FlagSched1 != 0 {
		names = append(names, prefix+"-fallback")
	}
	if f&netops.FlagSched2 != 0 {
		names = append(names, prefix+"-port")
	}
	if rest := f &^ (netops.FlagSched1 | netops.FlagSched2); rest != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint32(rest)))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

func thresholdText(d netops.Destination) string {
	if d.Upper == 0 && d.Lower == 0 {
		return ""
	}
	return fmt.Sprintf(" upper %d lower %d", d.Upper, d.Lower)
}

func serviceChanges(o, n netops.Service) string {
	var c []string
	if o.Scheduler != n.Scheduler {
		c = append(c, fmt.Sprintf("scheduler %s -> %s", o.Scheduler, n.Scheduler))
	}
	if o.Flags != n.Flags {
		c = append(c, fmt.Sprintf("flags %s -> %s", FlagNames(o.Scheduler, o.Flags), FlagNames(n.Scheduler, n.Flags)))
	}
	return strings.Join(c, ", ")
}

func destChanges(o, n netops.Destination) string {
	var c []string
	if o.Weight != n.Weight {
		c = append(c, fmt.Sprintf("weight %d -> %d", o.Weight, n.Weight))
	}
	if o.Forward != n.Forward {
		c = append(c, fmt.Sprintf("forwarding %s -> %s", o.Forward, n.Forward))
	}
	if o.Upper != n.Upper {
		c = append(c, fmt.Sprintf("upper %d -> %d", o.Upper, n.Upper))
	}
	if o.Lower != n.Lower {
		c = append(c, fmt.Sprintf("lower %d -> %d", o.Lower, n.Lower))
	}
	return strings.Join(c, ", ")
}
