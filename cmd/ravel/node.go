package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/reconcile"
)

// hostname is os.Hostname; tests replace it.
var hostname = os.Hostname

// nodeFlags are the node.* overrides shared by plan and run.
type nodeFlags struct {
	name, role, iface, vipIface, gateway string
}

func (n *nodeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&n.name, "node-name", "", "override node.name (default: the config's, else the hostname lowercased, as kubelet does)")
	fs.StringVar(&n.role, "role", "", "override node.role: director, realserver or bgp")
	fs.StringVar(&n.iface, "interface", "", "override node.interface (ARP announcements, tunnel source)")
	fs.StringVar(&n.vipIface, "vip-interface", "", "override node.vipInterface (ravel's dummy device, or lo)")
	fs.StringVar(&n.gateway, "gateway", "", "override node.gateway (target of gratuitous ARP)")
}

// apply writes the overrides into cfg (a copy the command owns) and returns the node identity.
func (n *nodeFlags) apply(cfg *config.Config) (reconcile.Node, error) {
	if n.name != "" {
		cfg.Node.Name = n.name
	}
	if n.role != "" {
		if n.role != "director" && n.role != "realserver" && n.role != "bgp" {
			return reconcile.Node{}, &exitError{exitUsage, fmt.Errorf("--role must be director, realserver or bgp, not %q", n.role)}
		}
		if n.role == "bgp" && cfg.BGP == nil {
			return reconcile.Node{}, &exitError{exitInvalid, fmt.Errorf("--role bgp needs a bgp section (asn and peers) in %s", cfg.File)}
		}
		cfg.Node.Role = n.role
	}
	if n.iface != "" {
		cfg.Node.Interface = n.iface
	}
	if n.vipIface != "" {
		cfg.Node.VIPInterface = n.vipIface
	}
	if n.gateway != "" {
		gw, err := netip.ParseAddr(n.gateway)
		if err != nil {
			return reconcile.Node{}, &exitError{exitUsage, fmt.Errorf("--gateway: %w", err)}
		}
		cfg.Node.Gateway = &gw
	}
	if cfg.Node.Name == "" {
		h, err := hostname()
		if err != nil {
			return reconcile.Node{}, fmt.Errorf("node.name is empty and the hostname is unknown: %w", err)
		}
		// kubelet registers the node under its hostname lowercased; the name as it is would
		// match no node of the snapshot, and a realserver would program nothing.
		cfg.Node.Name = strings.ToLower(h)
	}
	return reconcile.Node{Name: cfg.Node.Name, Role: cfg.Node.Role}, nil
}

// checkNodeAddrs refuses a config whose vipPool holds an address of node.interface (addrs, only
// known at run time) or the node's gateway after the flags: binding it would take the node's
// own address, or announce the router's, and cut the node off. The loader checks the gateway
// of the file; this also covers --gateway.
func checkNodeAddrs(cfg *config.Config, addrs []netip.Addr) error {
	for _, vip := range cfg.VIPPool {
		if slices.Contains(addrs, vip) {
			return fmt.Errorf("refusing to start: vipPool address %s is an address of node.interface %s: it cannot be a VIP", vip, cfg.Node.Interface)
		}
		if cfg.Node.Gateway != nil && *cfg.Node.Gateway == vip {
			return fmt.Errorf("refusing to start: vipPool address %s is the gateway %s: it cannot be a VIP", vip, *cfg.Node.Gateway)
		}
	}
	return nil
}

// interfaceAddrs lists the IPv4 addresses of the interface called name.
func interfaceAddrs(name string) ([]netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	as, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// firstIPv4 is the first IPv4 address of addrs, or the zero Addr.
func firstIPv4(addrs []netip.Addr) netip.Addr {
	for _, a := range addrs {
		if a.Is4() {
			return a
		}
	}
	return netip.Addr{}
}
