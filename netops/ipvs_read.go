package netops

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A full read asks the kernel for the destinations of every owned service: one dump each
// (IPVS has no dump of all destinations), 10,000 at 10,000 services. moby/ipvs spends on each
// a fresh 64 KiB receive buffer per read and an allocation per attribute, and one Handle
// serializes every request on its socket. The readers here dump on sockets of their own,
// reuse their buffer, parse the attributes in place, and several of them serve a full read
// at once (reconcile.ReadActual asks for services concurrently): the kernel runs each dump in
// the reading thread, so the dumps proceed on as many CPUs. The conformance suite compares
// what they read with moby's Destinations on the real kernel.

// ipvsReaders is how many dump sockets a KernelIPVS opens.
const ipvsReaders = 4

const (
	ipvsCmdGetDest = 8

	ipvsDestAttrActiveConns = 7
	ipvsDestAttrInactConns  = 8
	ipvsDestAttrAddrFamily  = 11

	nlaTypeMask = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	ipvsFwdMask = 0x7    // IP_VS_CONN_F_FWD_MASK
)

// ipvsReader dumps destinations on its own generic netlink socket.
type ipvsReader struct {
	fd     int
	s      *nl.NetlinkSocket
	family uint16
	buf    []byte
	seq    uint32
}

var readerSeq atomic.Uint32

func newIPVSReader(path string, family uint16) (*ipvsReader, error) {
	ns, err := netnsAt(path)
	if err != nil {
		return nil, err
	}
	defer closeNetns(ns)
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("generic netlink socket: %w", err)
	}
	// A dump is answered as it is read; a kernel that stops answering must not hang a sync.
	if err := s.SetReceiveTimeout(&unix.Timeval{Sec: 30}); err != nil {
		s.Close()
		return nil, err
	}
	return &ipvsReader{fd: s.GetFd(), s: s, family: family, buf: make([]byte, 64<<10), seq: readerSeq.Add(1 << 20)}, nil
}

func (r *ipvsReader) close() { r.s.Close() }

// dests dumps the destinations of key, with their connection counters. A missing service
// ends the dump at once: no destinations, no error (see ListedDestinations).
func (r *ipvsReader) dests(key ServiceKey) ([]Destination, []DestStats, error) {
	r.seq++
	seq := r.seq
	if err := unix.Sendto(r.fd, r.request(key, seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, nil, fmt.Errorf("send: %w", err)
	}
	var out []Destination
	var stats []DestStats
	for {
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("receive: %w", err)
		}
		b := r.buf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return nil, nil, fmt.Errorf("malformed netlink message (length %d of %d)", l, len(b))
			}
			typ := binary.NativeEndian.Uint16(b[4:6])
			mseq := binary.NativeEndian.Uint32(b[8:12])
			body := b[unix.NLMSG_HDRLEN:l]
			b = b[min(nlAlign(l), len(b)):]
			if mseq != seq {
				continue // not ours: the late end of an earlier dump
			}
			switch typ {
			case unix.NLMSG_DONE:
				return out, stats, nil
			case unix.NLMSG_ERROR:
				if len(body) < 4 {
					return nil, nil, fmt.Errorf("short netlink error")
				}
				if code := int32(binary.NativeEndian.Uint32(body[:4])); code != 0 {
					return nil, nil, syscall.Errno(-code)
				}
				return out, stats, nil
			case r.family:
				if len(body) < 4 {
					continue
				}
				d, st, ok, err := parseDestMsg(body[4:], key)
				if err != nil {
					return nil, nil, err
				}
				if ok {
					out = append(out, d)
					stats = append(stats, st)
				}
			}
		}
	}
}

// request is the dump request for the destinations of key: the service's family, protocol,
// address and port, which is all the kernel looks the service up by.
func (r *ipvsReader) request(key ServiceKey, seq uint32) []byte {
	addr := key.VIP.AsSlice()
	svc := appendAttr(nil, ipvsSvcAttrAF, binary.NativeEndian.AppendUint16(nil, ipvsAF(key.VIP)))
	svc = appendAttr(svc, ipvsSvcAttrProtocol, binary.NativeEndian.AppendUint16(nil, uint16(key.Proto)))
	svc = appendAttr(svc, ipvsSvcAttrAddr, addr)
	svc = appendAttr(svc, ipvsSvcAttrPort, binary.BigEndian.AppendUint16(nil, key.Port))
	body := []byte{ipvsCmdGetDest, ipvsGenlVersion, 0, 0}
	body = appendAttr(body, ipvsCmdAttrService|unix.NLA_F_NESTED, svc)
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(msg[0:4], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(msg[4:6], r.family)
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(msg[8:12], seq)
	return append(msg, body...)
}

// appendAttr appends a netlink attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.NLA_HDRLEN+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// eachAttr calls fn with the type (flags masked) and value of every attribute in b.
func eachAttr(b []byte, fn func(typ uint16, v []byte)) error {
	for len(b) >= unix.NLA_HDRLEN {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < unix.NLA_HDRLEN || l > len(b) {
			return fmt.Errorf("malformed netlink attribute (length %d of %d)", l, len(b))
		}
		fn(binary.NativeEndian.Uint16(b[2:4])&nlaTypeMask, b[unix.NLA_HDRLEN:l])
		b = b[min((l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(b)):]
	}
	return nil
}

// parseDestMsg reads one destination of a GET_DEST answer, as fromIPVSDest reads moby's:
// the address in the family of the destination (the service's when the kernel does not
// say, before Linux 3.18), the forwarding method masked, the weight as the u32 it is.
func parseDestMsg(b []byte, key ServiceKey) (Destination, DestStats, bool, error) {
	var d Destination
	var st DestStats
	found := false
	var addr []byte
	af := ipvsAF(key.VIP)
	var inner error
	err := eachAttr(b, func(typ uint16, v []byte) {
		if typ != ipvsCmdAttrDest {
			return
		}
		found = true
		inner = eachAttr(v, func(typ uint16, v []byte) {
			switch {
			case typ == ipvsDestAttrAddr:
				addr = v
			case typ == ipvsDestAttrPort && len(v) >= 2:
				d.Port = binary.BigEndian.Uint16(v)
			case typ == ipvsDestAttrFwdMethod && len(v) >= 4:
				method := binary.NativeEndian.Uint32(v) & ipvsFwdMask
				d.Forward = forwardOther | Forward(method)
				for f, m := range forwardToKernel {
					if m == method {
						d.Forward = f
					}
				}
			case typ == ipvsDestAttrWeight && len(v) >= 4:
				d.Weight = int(int32(binary.NativeEndian.Uint32(v)))
			case typ == ipvsDestAttrUThresh && len(v) >= 4:
				d.Upper = binary.NativeEndian.Uint32(v)
			case typ == ipvsDestAttrLThresh && len(v) >= 4:
				d.Lower = binary.NativeEndian.Uint32(v)
			case typ == ipvsDestAttrActiveConns && len(v) >= 4:
				st.ActiveConns = int(binary.NativeEndian.Uint32(v))
			case typ == ipvsDestAttrInactConns && len(v) >= 4:
				st.InactiveConns = int(binary.NativeEndian.Uint32(v))
			case typ == ipvsDestAttrAddrFamily && len(v) >= 2:
				af = binary.NativeEndian.Uint16(v)
			}
		})
	})
	if err == nil {
		err = inner
	}
	if err != nil || !found {
		return Destination{}, DestStats{}, false, err
	}
	var ok bool
	switch {
	case af == unix.AF_INET && len(addr) >= 4:
		d.Addr, ok = netip.AddrFromSlice(addr[:4])
	case af == unix.AF_INET6 && len(addr) >= 16:
		d.Addr, ok = netip.AddrFromSlice(addr[:16])
	}
	if !ok {
		return Destination{}, DestStats{}, false, fmt.Errorf("bad destination address %x (family %d)", addr, af)
	}
	return d, st, true, nil
}
