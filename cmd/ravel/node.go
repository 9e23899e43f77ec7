package main

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/spf13/pflag"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/reconcile"
)

// nodeFlags are the node.* overrides shared by plan and run.
type nodeFlags struct {
	name, role, iface, vipIface, gateway string
}

func (n *nodeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&n.name, "node-name", "", "override node.name (default: the config's, else the hostname)")
	fs.StringVar(&n.role, "role", "", "override node.role: director or realserver")
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
		if n.role != "director" && n.role != "realserver" {
			return reconcile.Node{}, &exitError{exitUsage, fmt.Errorf("--role must be director or realserver, not %q", n.role)}
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
		h, err := os.Hostname()
		if err != nil {
			return reconcile.Node{}, fmt.Errorf("node.name is empty and the hostname is unknown: %w", err)
		}
		cfg.Node.Name = h
	}
	return reconcile.Node{Name: cfg.Node.Name, Role: cfg.Node.Role}, nil
}
