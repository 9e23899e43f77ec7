package netops

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const procTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:AD9C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 00000000:AD9D 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 1002 1 0000000000000000 100 0 0 10 0
   2: 0100007F:AD9C 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 1003 1 0000000000000000 20 4 30 10 -1
   3: 0A00000A:AD9E 00000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 1004 1 0000000000000000 100 0 0 10 0
`

const procTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:AD9E 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:AD9F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0
`

// TestParseProcNetTCP reads listening sockets of both tables (little-endian words, as on the
// machines ravel runs on) and skips connected ones.
func TestParseProcNetTCP(t *testing.T) {
	l := func(ap string, uid uint32, inode uint64) Listener {
		return Listener{Addr: netip.MustParseAddrPort(ap), UID: uid, Inode: inode}
	}
	for _, c := range []struct {
		name, text string
		want       []Listener
	}{
		{"tcp", procTCP, []Listener{l("127.0.0.1:44444", 0, 1001), l("0.0.0.0:44445", 65534, 1002), l("10.0.0.10:44446", 33, 1004)}},
		{"tcp6", procTCP6, []Listener{l("[::]:44446", 1000, 2001), l("[::1]:44447", 0, 2002)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseProcNetTCP(strings.NewReader(c.text))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := parseProcNetTCP(strings.NewReader("h\n 0: 0100007F:AD9C 0A\n")); err == nil {
		t.Error("a short line parsed without error")
	}
}

// TestListenersFor: a connection to an address is taken by a listener on that address or on a
// wildcard of the same port (a :: wildcard takes IPv4 too: /proc does not show V6ONLY).
func TestListenersFor(t *testing.T) {
	all := []Listener{
		{Addr: netip.MustParseAddrPort("127.0.0.1:1"), Inode: 1},
		{Addr: netip.MustParseAddrPort("0.0.0.0:2"), Inode: 2},
		{Addr: netip.MustParseAddrPort("[::]:3"), Inode: 3},
		{Addr: netip.MustParseAddrPort("10.0.0.1:1"), Inode: 4},
		{Addr: netip.MustParseAddrPort("[::1]:4"), Inode: 5},
	}
	for _, c := range []struct {
		ap   string
		want []uint64
	}{
		{"127.0.0.1:1", []uint64{1}},
		{"127.0.0.1:2", []uint64{2}},
		{"127.0.0.1:3", []uint64{3}},
		{"127.0.0.1:4", nil},
		{"[::1]:2", nil},
		{"[::1]:4", []uint64{5}},
	} {
		var got []uint64
		for _, l := range listenersFor(all, netip.MustParseAddrPort(c.ap)) {
			got = append(got, l.Inode)
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("listenersFor(%s) (-want +got):\n%s", c.ap, diff)
		}
	}
}
