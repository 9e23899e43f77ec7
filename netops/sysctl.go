package netops

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var _ Sysctl = (*KernelSysctl)(nil)

// sysctlKey matches the keys ravel may read and write: the IPVS tree, the four per-interface
// ARP and reverse-path knobs (interface names limited to a safe subset of what the kernel
// allows, including "all" and "default"), and ip_forward. Keys use '/' like the files under
// /proc/sys; a dot inside an interface name ("eth0.100") is part of the name.
var sysctlKey = regexp.MustCompile(`^net/ipv4/(?:ip_forward|vs/[a-z0-9_]+|conf/([A-Za-z0-9_.-]{1,15})/(?:arp_ignore|arp_announce|rp_filter|accept_local))$`)

// checkSysctlKey refuses every key outside the trees ravel may write with ErrNotOwned. The
// match is on the whole key, so "..", absolute paths, doubled or trailing slashes, spaces
// and other trees never reach the file system.
func checkSysctlKey(key string) error {
	m := sysctlKey.FindStringSubmatch(key)
	if m == nil || m[1] == "." || m[1] == ".." {
		return refuse(ErrNotOwned, "sysctl %q", key)
	}
	return nil
}

// checkSysctlValue refuses values that cannot be one write of a sysctl: empty, or more than
// one line.
func checkSysctlValue(key, value string) error {
	v := strings.TrimSpace(value)
	if v == "" || strings.ContainsAny(v, "\n\r\x00") {
		return refuse(ErrInvalid, "sysctl %s: value %q", key, value)
	}
	return nil
}

// KernelSysctl reads and writes the files under a root directory (normally /proc/sys).
//
// The files under /proc/sys/net belong to the network namespace of the thread that opens
// them, not of the process: to reach another namespace, call from a goroutine locked to an
// OS thread that has entered it (runtime.LockOSThread, netns.Set).
type KernelSysctl struct {
	root string // read-only after construction
}

// NewSysctl returns a Sysctl over the files under root; "" means /proc/sys.
func NewSysctl(root string) *KernelSysctl {
	if root == "" {
		root = "/proc/sys"
	}
	return &KernelSysctl{root: root}
}

// Get returns the value of key with surrounding white space trimmed (a multi-value key such
// as net/ipv4/vs/sync_threshold keeps its inner tab). ErrNotExist if the file is missing.
func (s *KernelSysctl) Get(key string) (string, error) {
	if err := checkSysctlKey(key); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(s.root, key))
	if err != nil {
		return "", sysctlError(err, "read sysctl %s", key)
	}
	return strings.TrimSpace(string(b)), nil
}

// Set writes value to key, which must exist (a sysctl file is never created). The kernel
// refuses a value it cannot parse with EINVAL, reported as ErrInvalid.
func (s *KernelSysctl) Set(key, value string) error {
	if err := checkSysctlKey(key); err != nil {
		return err
	}
	if err := checkSysctlValue(key, value); err != nil {
		return err
	}
	// No O_CREATE: a missing key is ErrNotExist, under /proc/sys and in a test directory alike.
	// O_TRUNC matters only for a test directory; /proc/sys ignores it.
	f, err := os.OpenFile(filepath.Join(s.root, key), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return sysctlError(err, "write sysctl %s", key)
	}
	// One write(2) of the whole value: proc_dointvec parses the buffer of one write.
	_, werr := f.WriteString(strings.TrimSpace(value) + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return sysctlError(err, "write sysctl %s = %q", key, value)
	}
	return nil
}

func sysctlError(err error, format string, args ...any) error {
	if errors.Is(err, fs.ErrNotExist) {
		return refuse(ErrNotExist, format, args...)
	}
	return kernelError(err, format, args...)
}
