package netops

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Listener is a listening TCP socket as /proc/net/tcp and /proc/net/tcp6 show it.
type Listener struct {
	Addr  netip.AddrPort // local address; 0.0.0.0 or :: for a wildcard bind
	UID   uint32         // owner of the socket: the effective uid of the process that made it
	Inode uint64         // the socket's inode, as in /proc/PID/fd/N -> socket:[inode]
}

// Holder is a process that has a socket open.
type Holder struct {
	PID  int
	Comm string
}

func (h Holder) String() string { return fmt.Sprintf("pid %d (%s)", h.PID, h.Comm) }

// Sockets tells who owns the listening TCP sockets of this network namespace.
type Sockets interface {
	// Listeners returns the listening sockets that take connections to ap: those bound to
	// its address and port, or to the wildcard address on that port.
	Listeners(ap netip.AddrPort) ([]Listener, error)
	// Holder returns a process that has the socket with this inode open; false when none
	// can be found (it exited, or its /proc entries are hidden from us).
	Holder(inode uint64) (Holder, bool)
}

// ProcSockets reads the kernel's socket tables under Proc ("" means /proc).
type ProcSockets struct {
	Proc string
}

var _ Sockets = ProcSockets{}

func (p ProcSockets) root() string {
	if p.Proc == "" {
		return "/proc"
	}
	return p.Proc
}

// Listeners implements Sockets. It reads thread-self, not self: /proc/self/net (and the
// /proc/net symlink) shows the network namespace of the process's main thread, while a
// caller that entered another namespace with setns did so on its own thread only.
func (p ProcSockets) Listeners(ap netip.AddrPort) ([]Listener, error) {
	var all []Listener
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open(filepath.Join(p.root(), "thread-self", "net", f))
		if os.IsNotExist(err) && f == "tcp6" {
			continue // a kernel without IPv6
		}
		if err != nil {
			return nil, err
		}
		ls, err := parseProcNetTCP(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fh.Name(), err)
		}
		all = append(all, ls...)
	}
	return listenersFor(all, ap), nil
}

// Holder implements Sockets by looking for socket:[inode] among every process's open files.
func (p ProcSockets) Holder(inode uint64) (Holder, bool) {
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	pids, _ := filepath.Glob(filepath.Join(p.root(), "[0-9]*"))
	for _, dir := range pids {
		fds, _ := filepath.Glob(filepath.Join(dir, "fd", "*"))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err != nil || l != want {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(dir))
			comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
			return Holder{PID: pid, Comm: strings.TrimSpace(string(comm))}, true
		}
	}
	return Holder{}, false
}

// listenersFor keeps the listeners that take connections to ap. A wildcard :: listener takes
// IPv4 connections too unless it set IPV6_V6ONLY, which /proc does not show: it is kept.
func listenersFor(all []Listener, ap netip.AddrPort) []Listener {
	var out []Listener
	for _, l := range all {
		if l.Addr.Port() != ap.Port() {
			continue
		}
		a := l.Addr.Addr()
		if a == ap.Addr() || a.Unmap() == ap.Addr().Unmap() || a.IsUnspecified() && (a.Is6() || ap.Addr().Is4()) {
			out = append(out, l)
		}
	}
	return out
}

// tcpListen is the st column of a socket in TCP_LISTEN.
const tcpListen = "0A"

// parseProcNetTCP reads the listening sockets of /proc/net/tcp or tcp6:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//	0: 0100007F:AD9C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 ...
func parseProcNetTCP(r io.Reader) ([]Listener, error) {
	var out []Listener
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if n == 1 || len(f) == 0 {
			continue // the header
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 10", n, len(f))
		}
		if f[3] != tcpListen {
			continue
		}
		ap, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: local address %q: %w", n, f[1], err)
		}
		uid, err := strconv.ParseUint(f[7], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("line %d: uid %q: %w", n, f[7], err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: inode %q: %w", n, f[9], err)
		}
		out = append(out, Listener{Addr: ap, UID: uint32(uid), Inode: inode})
	}
	return out, sc.Err()
}

// parseHexAddrPort parses ADDR:PORT as the kernel prints it: the port is a plain hex number,
// the address is its 32-bit words each printed with %08X in host byte order (so on
// little-endian machines 127.0.0.1 reads 0100007F).
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no ':'")
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(h) != 8 && len(h) != 32 {
		return netip.AddrPort{}, fmt.Errorf("%d hex digits, want 8 or 32", len(h))
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return netip.AddrPort{}, err
	}
	for i := 0; i < len(b); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(b[i:]))
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(a, uint16(port)), nil
}
