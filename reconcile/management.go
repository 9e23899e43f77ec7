package reconcile

import (
	"fmt"
	"net/netip"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/schema"
)

// ManagementName labels the management services in logs, plans and metrics.
const ManagementName = "management"

// ManagementServices expands management.port into one service per VIP of the pool (the seed's
// autoconfigured service): backed by management.kubernetes when it names a service, else by
// every eligible node's health endpoint (a service with neither kubernetes nor backends).
// With static backends only and no target there is none: the director answers the port
// itself. Each takes defaults.ipvs. The config refused collisions with configured services.
func ManagementServices(cfg *config.Config) []schema.Service {
	m := &cfg.Management
	if m.Port <= 0 || m.Kubernetes == nil && cfg.Kubernetes == nil {
		return nil
	}
	ipvs := cfg.Defaults.IPVS
	out := make([]schema.Service, 0, len(cfg.VIPPool))
	for _, vip := range cfg.VIPPool {
		out = append(out, schema.Service{
			Name:       fmt.Sprintf("%s %s", ManagementName, netip.AddrPortFrom(vip, uint16(m.Port))),
			VIP:        vip,
			Port:       m.Port,
			Protocols:  []string{m.Protocol},
			Kubernetes: m.Kubernetes,
			IPVS:       &ipvs,
		})
	}
	return out
}

// DirectorAnswersManagement reports whether the director itself answers the management port
// on every VIP (static backends only, no target).
func DirectorAnswersManagement(cfg *config.Config) bool {
	return cfg.Management.Port > 0 && cfg.Management.Kubernetes == nil && cfg.Kubernetes == nil
}
