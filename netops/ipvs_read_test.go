package netops

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// destAttrs builds a GET_DEST answer's attributes as the kernel writes them
// (ip_vs_genl_fill_dest): the address as a 16-byte union, the port in network order, the
// rest native u32s; family is left out when af is 0 (kernels before 3.18).
func destAttrs(addr netip.Addr, port uint16, fwd, weight, upper, lower, active, inact uint32, af uint16) []byte {
	u32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	a := make([]byte, 16)
	copy(a, addr.AsSlice())
	var d []byte
	d = appendAttr(d, ipvsDestAttrAddr, a)
	d = appendAttr(d, ipvsDestAttrPort, binary.BigEndian.AppendUint16(nil, port))
	d = appendAttr(d, ipvsDestAttrFwdMethod, u32(fwd))
	d = appendAttr(d, ipvsDestAttrWeight, u32(weight))
	d = appendAttr(d, ipvsDestAttrUThresh, u32(upper))
	d = appendAttr(d, ipvsDestAttrLThresh, u32(lower))
	d = appendAttr(d, ipvsDestAttrActiveConns, u32(active))
	d = appendAttr(d, ipvsDestAttrInactConns, u32(inact))
	if af != 0 {
		d = appendAttr(d, ipvsDestAttrAddrFamily, binary.NativeEndian.AppendUint16(nil, af))
	}
	return appendAttr(nil, ipvsCmdAttrDest|unix.NLA_F_NESTED, d)
}

func TestParseDestMsg(t *testing.T) {
	v4 := ServiceKey{VIP: netip.MustParseAddr("10.0.0.1"), Port: 80, Proto: TCP}
	v6 := ServiceKey{VIP: netip.MustParseAddr("fd00::1"), Port: 80, Proto: TCP}
	for _, c := range []struct {
		name  string
		key   ServiceKey
		msg   []byte
		want  Destination
		stats DestStats
	}{
		{"dr, family given", v4, destAttrs(netip.MustParseAddr("10.1.0.1"), 8080, 3|0x100, 7, 50, 25, 3, 4, unix.AF_INET),
			Destination{DestKey: DestKey{Addr: netip.MustParseAddr("10.1.0.1"), Port: 8080}, Weight: 7, Forward: ForwardDR, Upper: 50, Lower: 25}, DestStats{3, 4}},
		{"tunnel, no family: the service's", v4, destAttrs(netip.MustParseAddr("10.1.0.2"), 80, 2, 0, 0, 0, 0, 9, 0),
			Destination{DestKey: DestKey{Addr: netip.MustParseAddr("10.1.0.2"), Port: 80}, Forward: ForwardTunnel}, DestStats{0, 9}},
		{"nat, a weight above 16 bits", v4, destAttrs(netip.MustParseAddr("10.1.0.3"), 80, 0, 70000, 0, 0, 0, 0, unix.AF_INET),
			Destination{DestKey: DestKey{Addr: netip.MustParseAddr("10.1.0.3"), Port: 80}, Weight: 70000, Forward: ForwardNAT}, DestStats{}},
		{"a method ravel never programs", v4, destAttrs(netip.MustParseAddr("10.1.0.4"), 80, 1, 1, 0, 0, 0, 0, unix.AF_INET),
			Destination{DestKey: DestKey{Addr: netip.MustParseAddr("10.1.0.4"), Port: 80}, Weight: 1, Forward: forwardOther | 1}, DestStats{}},
		{"IPv6", v6, destAttrs(netip.MustParseAddr("fd00::2"), 80, 3, 1, 0, 0, 0, 0, unix.AF_INET6),
			Destination{DestKey: DestKey{Addr: netip.MustParseAddr("fd00::2"), Port: 80}, Weight: 1, Forward: ForwardDR}, DestStats{}},
	} {
		d, st, ok, err := parseDestMsg(c.msg, c.key)
		if err != nil || !ok || d != c.want || st != c.stats {
			t.Errorf("%s: got %+v %+v %v %v, want %+v %+v", c.name, d, st, ok, err, c.want, c.stats)
		}
	}
	// Truncated: an attribute longer than the message is an error, not a panic.
	msg := destAttrs(netip.MustParseAddr("10.1.0.1"), 80, 3, 1, 0, 0, 0, 0, unix.AF_INET)
	if _, _, _, err := parseDestMsg(msg[:len(msg)-3], v4); err == nil {
		t.Error("a truncated message parsed")
	}
	// An address of the wrong length for its family.
	bad := appendAttr(nil, ipvsCmdAttrDest, appendAttr(appendAttr(nil, ipvsDestAttrAddr, []byte{10, 1}), ipvsDestAttrAddrFamily, binary.NativeEndian.AppendUint16(nil, unix.AF_INET)))
	if _, _, _, err := parseDestMsg(bad, v4); err == nil {
		t.Error("a 2-byte address parsed")
	}
}
