package daemon

import (
	"fmt"
	"strconv"
	"strings"
)

// arpIgnoreKeys are the sysctls that decide whether this node answers ARP for its VIPs: the
// kernel applies the larger of conf/all and the interface's arp_ignore, and any value above
// 0 stops replies for addresses of another device (the VIPs are on ravel0).
func arpIgnoreKeys(iface string) []string {
	return []string{"net/ipv4/conf/all/arp_ignore", "net/ipv4/conf/" + iface + "/arp_ignore"}
}

// SetSysctlRecord gives the director the record of what a realserver role on this node
// overwrote, so that it can set ARP sysctls back that a killed realserver left. Call before
// Run.
func (d *Director) SetSysctlRecord(r *SysctlRecord) { d.record = r }

// checkARP runs on every full sync: a director must answer ARP for its VIPs. A value the
// realserver role set (recorded) is set back; a value someone else set is reported (log once
// per change, status, ravel_arp_ignore_conflict) and left alone: it is not ravel's.
func (d *Director) checkARP() {
	if d.kernel.Sysctl == nil || d.cfg.Node.Interface == "" {
		return
	}
	var rec map[string]string
	if d.record != nil {
		var err error
		if rec, err = d.record.Load(); err != nil {
			d.log.Warn("cannot read the record of sysctls a realserver overwrote", "err", err)
		}
	}
	var conflicts []string
	for _, key := range arpIgnoreKeys(d.cfg.Node.Interface) {
		v, err := d.kernel.Sysctl.Get(key)
		if err != nil {
			continue // no such interface yet: nothing answers on it anyway
		}
		v = strings.TrimSpace(v)
		if n, _ := strconv.Atoi(v); n == 0 {
			continue
		}
		if orig, ok := rec[key]; ok {
			if err := d.kernel.Sysctl.Set(key, orig); err != nil {
				d.log.Error("cannot set back an ARP sysctl the realserver role left", "key", key, "value", orig, "err", err)
				continue
			}
			d.log.Warn("set back an ARP sysctl the realserver role left (it was stopped without standing down)", "key", key, "from", v, "to", orig)
			delete(rec, key)
			if err := d.record.write(rec); err != nil {
				d.log.Warn("cannot update the sysctl record", "err", err)
			}
			continue
		}
		conflicts = append(conflicts, fmt.Sprintf("%s=%s", key, v))
	}
	d.m.ARPConflict.Set(float64(len(conflicts)))
	problem := ""
	if len(conflicts) > 0 {
		problem = "ARP replies for the VIPs are off: " + strings.Join(conflicts, ", ") + " (set by someone else than ravel; the VIPs are answered only by periodic gratuitous ARP)"
	}
	if problem != d.arpProblem {
		d.arpProblem = problem
		if problem != "" {
			d.log.Warn("this director does not answer ARP for its VIPs", "conflicts", strings.Join(conflicts, ", "))
		} else {
			d.log.Info("ARP sysctls let this director answer for its VIPs again")
		}
		if d.status != nil {
			d.status.SetARPProblem(problem)
		}
	}
}
