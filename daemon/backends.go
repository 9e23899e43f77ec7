package daemon

import (
	"context"
	"log/slog"

	"github.com/ravel-lb/ravel/netops/iptables"
)

// tablesBackendCheck reports, at start and on every resync, when kube-proxy's KUBE-SERVICES is in
// the other iptables backend only (legacy vs nf_tables): ravel's jump is then never in front
// of it, and kube-proxy takes the VIP traffic to any pod of the cluster. ravel cannot repair
// that (it is how the node was set up): it logs once per change, sets
// ravel_iptables_backend_mismatch and the status's iptablesProblem. Owned by one role's
// goroutine.
type tablesBackendCheck struct {
	last string // the problem last reported, "" when none
}

func (c *tablesBackendCheck) run(ctx context.Context, t iptables.Tables, log *slog.Logger, m *Metrics, st *Status) {
	bc, ok := t.(iptables.BackendChecker)
	if !ok {
		return
	}
	b, err := bc.CheckBackends(ctx)
	if err != nil {
		log.Debug("cannot compare the iptables backends", "err", err)
		return
	}
	problem := ""
	if b.Mismatch() {
		problem = b.String() + ": ravel's rules never come before kube-proxy's; set iptables.backend to kube-proxy's (or auto) and restart"
		m.IPTablesBackendMismatch.Set(1)
	} else {
		m.IPTablesBackendMismatch.Set(0)
	}
	if problem == c.last {
		return
	}
	c.last = problem
	if problem != "" {
		log.Warn("kube-proxy's rules are in the other iptables backend", "backends", b.String())
	} else {
		log.Info("iptables backend", "backends", b.String())
	}
	if st != nil {
		st.SetIPTablesProblem(problem)
	}
}
