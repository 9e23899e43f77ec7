package netops

import (
	"fmt"
	"slices"
	"strings"
)

// DumpIPVS reads every service of v and its destinations and formats them as FormatIPVS
// does. It calls Services and Destinations, so on a fake it counts as those calls.
func DumpIPVS(v IPVS) (string, error) {
	svcs, err := v.Services()
	if err != nil {
		return "", err
	}
	dests := make(map[ServiceKey][]Destination, len(svcs))
	for _, s := range svcs {
		ds, err := v.Destinations(s.ServiceKey)
		if err != nil {
			return "", err
		}
		dests[s.ServiceKey] = ds
	}
	return FormatIPVS(svcs, dests), nil
}

// FormatIPVS formats services and their destinations as stable text, sorted by key, one
// line per service and one indented line per destination (x is the upper threshold and y
// the lower, as in ipvsadm's -x/-y):
//
//	tcp 10.0.0.1:80 wrr flags=0x0
//	  -> 10.0.1.5:80 dr w=3 x=0 y=0
func FormatIPVS(svcs []Service, dests map[ServiceKey][]Destination) string {
	svcs = slices.Clone(svcs)
	slices.SortFunc(svcs, func(a, b Service) int { return a.ServiceKey.Compare(b.ServiceKey) })
	var b strings.Builder
	for _, s := range svcs {
		fmt.Fprintf(&b, "%s %s flags=%#x\n", s.ServiceKey, s.Scheduler, uint32(s.Flags))
		ds := slices.Clone(dests[s.ServiceKey])
		slices.SortFunc(ds, func(x, y Destination) int { return x.DestKey.Compare(y.DestKey) })
		for _, d := range ds {
			fmt.Fprintf(&b, "  -> %s %s w=%d x=%d y=%d\n", d.DestKey, d.Forward, d.Weight, d.Upper, d.Lower)
		}
	}
	return b.String()
}
