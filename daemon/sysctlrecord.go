package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/reconcile"
)

// DefaultStateDir keeps what must survive a restart of ravel but not a reboot of the node:
// the sysctl values the realserver role overwrote (a reboot resets them anyway).
const DefaultStateDir = "/run/ravel"

// SysctlRecord is the file of the sysctl values the realserver role overwrote, so that it can
// put them back when it stands down or stops, even after a kill -9 and a restart. The kernel
// keeps sysctls per network namespace, so the file is too (its name carries the namespace's
// inode): several namespaces of one machine never share one.
//
// The ARP keys matter most: the realserver sets arp_ignore=1 on conf/all and node.interface,
// and a director on the same node (failover, then failback) answers ARP for its VIPs only if
// they are set back: arp_ignore=1 answers only for addresses of the receiving interface, and
// the VIPs are on ravel0 (the kernel uses the larger of conf/all and the interface's value).
type SysctlRecord struct {
	Path string
}

// NewSysctlRecord returns the record of this process's network namespace under dir.
func NewSysctlRecord(dir string) SysctlRecord {
	return SysctlRecord{Path: filepath.Join(dir, "sysctl-restore-"+netnsID()+".json")}
}

// netnsID names this process's network namespace by its inode ("default" when /proc cannot
// tell), for state files that belong to one namespace.
func netnsID() string {
	if l, err := os.Readlink("/proc/self/ns/net"); err == nil { // "net:[4026531992]"
		return strings.Trim(strings.TrimPrefix(l, "net:"), "[]")
	}
	return "default"
}

// Load returns the recorded original values (key → value); none when there is no file.
func (r SysctlRecord) Load() (map[string]string, error) {
	data, err := os.ReadFile(r.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Path, err)
	}
	return m, nil
}

// Remember adds the original values of the sysctls plan is about to overwrite, unless a value
// is recorded for that key already (the first original wins: a second overwrite by ravel
// must not record ravel's own value). It writes the file before the plan runs.
func (r SysctlRecord) Remember(plan *reconcile.Plan) error {
	rec, err := r.Load()
	if err != nil {
		return err
	}
	changed := false
	for _, op := range plan.Ops {
		if op.Kind != reconcile.OpSetSysctl || op.Detail().Old == "" {
			continue
		}
		if _, ok := rec[op.Key]; !ok { // (a sysctl op has its detail)
			rec[op.Key] = op.Old
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return r.write(rec)
}

func (r SysctlRecord) write(rec map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(rec, "", "  ")
	tmp := r.Path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, r.Path) // a kill mid-write never leaves half a record
}

// Restore sets every recorded key back to its original value and removes the record. Keys
// it cannot set stay recorded, and their errors are returned.
func (r SysctlRecord) Restore(s netops.Sysctl) (restored []string, err error) {
	rec, err := r.Load()
	if err != nil || len(rec) == 0 {
		return nil, err
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(rec)) {
		if err := s.Set(k, rec[k]); err != nil && !errors.Is(err, netops.ErrNotExist) {
			errs = append(errs, fmt.Errorf("restore %s=%s: %w", k, rec[k], err))
			continue
		}
		restored = append(restored, k+"="+rec[k])
		delete(rec, k)
	}
	if len(rec) > 0 {
		return restored, errors.Join(append(errs, r.write(rec))...)
	}
	if err := os.Remove(r.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return restored, errors.Join(errs...)
}
