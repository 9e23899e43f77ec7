package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

// tables6 are a role's ip6tables chains, for the IPv6 local services. They are opened the
// first time the pool has an IPv6 VIP, so that a node serving IPv4 only never runs ip6tables
// (which may load kernel modules, or not be installed), and removed when the pool has none
// left. The zero value (no open) does nothing.
type tables6 struct {
	open func() (iptables.Tables, error)
	t    iptables.Tables // nil until opened, and again after a removal
}

// wanted reports whether cfg's pool has an IPv6 VIP.
func wanted6(cfg *config.Config) bool { return slices.ContainsFunc(cfg.VIPPool, netip.Addr.Is6) }

// sync renders the IPv6 services of local into ip6tables while the pool has an IPv6 VIP, and
// removes ravel's ip6tables chains (once) when it no longer has.
func (x *tables6) sync(ctx context.Context, cfg *config.Config, opts chains.Options, local []netops.LocalService) (chains.Patch, error) {
	if !wanted6(cfg) {
		return chains.Patch{}, x.remove(ctx)
	}
	if err := x.ensure(); err != nil || x.t == nil {
		return chains.Patch{}, err
	}
	p, err := x.t.Apply(ctx, chains.Render(opts, local))
	if err != nil {
		return p, fmt.Errorf("ip6tables: %w", err)
	}
	return p, nil
}

// cleanup removes ravel's ip6tables chains, opening the tables first when cfg has IPv6 VIPs
// (a role stopping before its first sync may hold chains of an earlier run).
func (x *tables6) cleanup(ctx context.Context, cfg *config.Config) error {
	if wanted6(cfg) {
		if err := x.ensure(); err != nil {
			return err
		}
	}
	return x.remove(ctx)
}

// cleanupAll removes ravel's ip6tables chains whatever the pool holds (a switch to nftables:
// an earlier run may have had IPv6 VIPs). Without ip6tables there can be none to remove.
func (x *tables6) cleanupAll(ctx context.Context) error {
	if x.ensure() != nil {
		return nil
	}
	return x.remove(ctx)
}

func (x *tables6) ensure() error {
	if x.t != nil || x.open == nil {
		return nil
	}
	t, err := x.open()
	if err != nil {
		return fmt.Errorf("ip6tables: %w", err)
	}
	x.t = t
	return nil
}

func (x *tables6) remove(ctx context.Context) error {
	if x.t == nil {
		return nil
	}
	if err := x.t.Cleanup(ctx); err != nil {
		return fmt.Errorf("ip6tables cleanup: %w", err)
	}
	x.t = nil
	return nil
}
