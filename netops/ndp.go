package netops

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// NDP is IPv6's gratuitous ARP for the VIPs on one interface: it announces them with
// unsolicited neighbour advertisements, and it answers neighbour solicitations for them.
//
// The answering is needed because the VIPs live on ravel's dummy device, not on the interface
// the solicitations arrive on: unlike ARP (arp_ignore=0 answers for any local address), the
// kernel answers a solicitation only for an address of the receiving interface
// (net/ipv6/ndisc.c, ndisc_recv_ns), or for a proxy NDP entry, and proxy entries are answered
// only with forwarding on, which turns the director into an IPv6 router. So a client whose
// neighbour entry for a VIP expired, or one that never had it, would get no answer.
//
// Announcements follow RFC 4861 7.2.6: a neighbour advertisement to all-nodes (ff02::1) with
// the override flag set, the solicited flag clear and the interface's MAC as the target
// link-layer address, hop limit 255. A neighbour updates an entry it has from that, but
// Linux does not create one (net.ipv6.conf.*.accept_untracked_na=0 by default), like ARP's
// arp_accept. With a gateway, NDP also sends the gateway a neighbour solicitation for the
// gateway's own address from the VIP, with the MAC as source link-layer address: the gateway
// answers it and creates or updates its entry for the VIP in any case (RFC 4861 7.2.3), as
// the gratuitous ARP request to the gateway does for IPv4.
//
// The socket is opened lazily and re-opened after a failure.
type NDP struct {
	ifi     *net.Interface
	gateway netip.Addr // optional, IPv6

	mu     sync.Mutex
	conn   *ndp.Conn
	vips   map[netip.Addr]bool // answered (Serve)
	groups map[netip.Addr]bool // solicited-node groups joined on conn
	stats  NDPStats
}

// NDPStats counts what an NDP has done since it was made.
type NDPStats struct {
	Announced, Answered uint64
}

// NewNDP prepares announcements and answers on ifname. gateway may be the zero Addr; an IPv4
// gateway is ignored (it is GARP's).
func NewNDP(ifname string, gateway netip.Addr) (*NDP, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("neighbour discovery: interface %s: %w", ifname, err)
	}
	if !gateway.Is6() {
		gateway = netip.Addr{}
	}
	return &NDP{ifi: ifi, gateway: gateway, vips: map[netip.Addr]bool{}, groups: map[netip.Addr]bool{}}, nil
}

// open makes n.conn; the caller holds n.mu.
func (n *NDP) open() error {
	if n.conn != nil {
		return nil
	}
	// Bound to the unspecified address, the socket receives both the solicitations sent to a
	// VIP's solicited-node group (joined below) and the unicast ones a neighbour sends to the
	// VIP itself to confirm a stale entry; one bound to the link-local address would get only
	// the first.
	c, _, err := ndp.Listen(n.ifi, ndp.Unspecified)
	if err != nil {
		return fmt.Errorf("neighbour discovery on %s: %w", n.ifi.Name, err)
	}
	// The hop limit (255 for a message from the link itself) and the arrival interface of
	// each solicitation are checked before it is answered.
	if err := c.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagInterface, true); err != nil {
		c.Close()
		return fmt.Errorf("neighbour discovery on %s: %w", n.ifi.Name, err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborSolicitation)
	if err := c.SetICMPFilter(&f); err != nil {
		c.Close()
		return fmt.Errorf("neighbour discovery on %s: %w", n.ifi.Name, err)
	}
	n.conn = c
	n.groups = map[netip.Addr]bool{}
	go n.answer(c)
	return n.joinLocked()
}

// closeLocked drops the socket after a failure, to be opened again on the next call.
func (n *NDP) closeLocked() {
	if n.conn != nil {
		n.conn.Close()
		n.conn = nil
	}
}

// cm is the control message of what NDP sends: out of the interface, hop limit 255 (RFC 4861
// checks it on receipt). The kernel picks the source, the interface's link-local address for
// a link-local destination: naming it here would fail with EINVAL while it is still tentative
// (duplicate address detection after the link comes up), when the kernel picks another.
func (n *NDP) cm() *ipv6.ControlMessage {
	return &ipv6.ControlMessage{HopLimit: ndp.HopLimit, IfIndex: n.ifi.Index}
}

// Announce sends the advertisements for vip (an IPv6 address).
func (n *NDP) Announce(vip netip.Addr) error {
	if !vip.Is6() {
		return refuse(ErrInvalid, "neighbour advertisement for %s: not an IPv6 address", vip)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.open(); err != nil {
		return err
	}
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: n.ifi.HardwareAddr}},
	}
	if err := n.conn.WriteTo(na, n.cm(), netip.IPv6LinkLocalAllNodes()); err != nil {
		n.closeLocked()
		return fmt.Errorf("neighbour advertisement for %s on %s: %w", vip, n.ifi.Name, err)
	}
	if n.gateway.IsValid() {
		group, err := ndp.SolicitedNodeMulticast(n.gateway)
		if err != nil {
			return err
		}
		ns := &ndp.NeighborSolicitation{
			TargetAddress: n.gateway,
			Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: n.ifi.HardwareAddr}},
		}
		// From the VIP itself (a local address, bound without DAD, so usable at once): the
		// gateway learns the VIP's MAC from the solicitation's source.
		cm := n.cm()
		cm.Src = vip.AsSlice()
		if err := n.conn.WriteTo(ns, cm, group); err != nil {
			n.closeLocked()
			return fmt.Errorf("neighbour solicitation of gateway %s from %s: %w", n.gateway, vip, err)
		}
	}
	n.stats.Announced++
	return nil
}

// Serve makes NDP answer solicitations for exactly vips (their IPv6 ones): it joins their
// solicited-node groups on the interface and leaves the groups of VIPs no longer listed.
func (n *NDP) Serve(vips []netip.Addr) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.vips = make(map[netip.Addr]bool, len(vips))
	for _, v := range vips {
		if v.Is6() {
			n.vips[v] = true
		}
	}
	if len(n.vips) == 0 && n.conn == nil {
		return nil
	}
	if err := n.open(); err != nil {
		return err
	}
	return n.joinLocked()
}

// joinLocked brings the joined groups in line with n.vips.
func (n *NDP) joinLocked() error {
	want := map[netip.Addr]bool{}
	for v := range n.vips {
		g, err := ndp.SolicitedNodeMulticast(v)
		if err != nil {
			return err
		}
		want[g] = true
	}
	var errs []error
	for g := range want {
		if !n.groups[g] {
			if err := n.conn.JoinGroup(g); err != nil {
				errs = append(errs, fmt.Errorf("join %s on %s: %w", g, n.ifi.Name, err))
				continue
			}
			n.groups[g] = true
		}
	}
	for g := range n.groups {
		if !want[g] {
			if err := n.conn.LeaveGroup(g); err != nil {
				errs = append(errs, fmt.Errorf("leave %s on %s: %w", g, n.ifi.Name, err))
			}
			delete(n.groups, g)
		}
	}
	return errors.Join(errs...)
}

// answer reads solicitations from c until it is closed and answers those for a served VIP.
func (n *NDP) answer(c *ndp.Conn) {
	for {
		m, cm, from, err := c.ReadFrom()
		if err != nil {
			n.mu.Lock()
			if n.conn == c {
				n.closeLocked()
			}
			n.mu.Unlock()
			return
		}
		ns, ok := m.(*ndp.NeighborSolicitation)
		// RFC 4861 7.1.1: a solicitation that crossed a router (hop limit below 255) is
		// not from the link and must be ignored; so is one from another interface.
		if !ok || cm == nil || cm.HopLimit != ndp.HopLimit || cm.IfIndex != n.ifi.Index {
			continue
		}
		n.mu.Lock()
		if n.conn == c && n.vips[ns.TargetAddress] {
			n.reply(ns.TargetAddress, from.WithZone(""))
		}
		n.mu.Unlock()
	}
}

// reply answers a solicitation for vip from from; the caller holds n.mu. A solicitation from
// the unspecified address is another host's duplicate address detection for the VIP: the
// answer goes to all-nodes, unsolicited, and tells it the address is taken (RFC 4861 7.2.4).
func (n *NDP) reply(vip, from netip.Addr) {
	na := &ndp.NeighborAdvertisement{
		Solicited:     true,
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: n.ifi.HardwareAddr}},
	}
	dst := from
	if from.IsUnspecified() {
		na.Solicited = false
		dst = netip.IPv6LinkLocalAllNodes()
	}
	if err := n.conn.WriteTo(na, n.cm(), dst); err == nil {
		n.stats.Answered++
	}
}

// Stats returns what n has sent so far.
func (n *NDP) Stats() NDPStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Close stops answering and releases the socket.
func (n *NDP) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.vips = map[netip.Addr]bool{}
	if n.conn == nil {
		return nil
	}
	err := n.conn.Close()
	n.conn = nil
	return err
}
