package netops

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// GARP announces VIPs with gratuitous ARP from one interface, so that switches and routers
// learn (after a failover: re-learn) which MAC address a VIP lives behind.
type GARP struct {
	ifi     *net.Interface
	gateway netip.Addr // optional: the announcement is addressed to it

	mu     sync.Mutex // guards client
	client *arp.Client
}

// NewGARP opens a raw ARP socket on ifname. gateway may be the zero Addr.
//
// The socket is opened lazily on the first Announce and re-opened after a failure:
// arp.Dial needs the interface to carry an IPv4 address, which may appear after start.
func NewGARP(ifname string, gateway netip.Addr) (*GARP, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("gratuitous ARP: interface %s: %w", ifname, err)
	}
	return &GARP{ifi: ifi, gateway: gateway}, nil
}

// Announce sends one gratuitous ARP for vip.
//
// Without a gateway it is the classic form: an ARP request with sender and target IP both
// the VIP, to the broadcast address. A Linux neighbour updates an entry it already has from
// that, but only creates a new one with arp_accept=1. With a gateway, the request asks for the
// gateway's address with the VIP as sender: the gateway answers it, and, because the request
// targets one of its own addresses, the kernel creates or updates its entry for the VIP in
// any case (net/ipv4/arp.c, arp_process). That is why node.gateway makes failover reliable.
func (g *GARP) Announce(vip netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.client == nil {
		c, err := arp.Dial(g.ifi)
		if err != nil {
			return fmt.Errorf("gratuitous ARP on %s: %w", g.ifi.Name, err)
		}
		g.client = c
	}
	target := vip
	if g.gateway.IsValid() {
		target = g.gateway
	}
	p, err := arp.NewPacket(arp.OperationRequest, g.ifi.HardwareAddr, vip, ethernet.Broadcast, target)
	if err != nil {
		return fmt.Errorf("gratuitous ARP for %s: %w", vip, err)
	}
	if err := g.client.WriteTo(p, ethernet.Broadcast); err != nil {
		g.client.Close()
		g.client = nil
		return fmt.Errorf("gratuitous ARP for %s on %s: %w", vip, g.ifi.Name, err)
	}
	return nil
}

// Close releases the socket.
func (g *GARP) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.client == nil {
		return nil
	}
	err := g.client.Close()
	g.client = nil
	return err
}
