package daemon

import (
	"context"
	"maps"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/reconcile"
)

// The periodic resync reads every owned service from the kernel. At 10,000 services that
// took 8-12 s in the QEMU guest, and in the director's loop it held every EndpointSlice
// change, health transition and reload that came meanwhile (issue 13: the slowest changes of
// the Kubernetes latency bench, 7-12 s, were those). The read now runs on a goroutine while
// the loop goes on; when it arrives, the services the loop applied ops to meanwhile are read
// again (they may have changed after the read saw them), and the diff, apply and the rest run
// in the loop as in FullSync. A full sync of the loop (a reload that could not be applied by
// parts, a retry, a drain) while the read runs makes the read moot: it is dropped. A reload
// that changed the config starts the read again, as the owned VIPs may have changed.

// fullRead is a resync's read of the kernel's IPVS services, made outside the loop.
type fullRead struct {
	read    *reconcile.IPVSRead
	cfg     *config.Config // the config it was started under
	syncs   uint64         // fullSyncs when it started
	started time.Time      // the resync's start: its duration counts the read
}

// startFullRead starts the periodic resync's read, unless one is under way.
func (d *Director) startFullRead(ctx context.Context) {
	if d.reading {
		return
	}
	d.reading, d.touched = true, map[netops.ServiceKey]bool{}
	owned, k := maps.Clone(d.owned), d.kernel.IPVS
	r := fullRead{cfg: d.cfg, syncs: d.fullSyncs, started: d.now()}
	go func() {
		r.read = reconcile.ReadIPVS(ctx, k, func(s netops.Service) bool { return owned[s.VIP] })
		select {
		case d.fullReads <- r:
		case <-ctx.Done():
		}
	}()
}

// finishFullRead completes the resync whose read r is: in the loop, like FullSync.
func (d *Director) finishFullRead(ctx context.Context, r fullRead) {
	touched := d.touched
	d.reading, d.touched = false, nil
	switch {
	case ctx.Err() != nil:
		return
	case r.syncs != d.fullSyncs:
		d.log.Debug("resync: dropping its read, a full sync ran meanwhile")
		return
	case r.cfg != d.cfg:
		d.log.Debug("resync: reading again, the config was reloaded meanwhile")
		d.startFullRead(ctx)
		return
	}
	read := r.read
	if len(touched) > 0 {
		again := reconcile.ReadIPVS(ctx, d.kernel.IPVS, func(s netops.Service) bool { return touched[s.ServiceKey] && d.owned[s.VIP] })
		read = read.With(touched, again)
	}
	d.fullSync(r.started, func(sysctlKeys []string) (*reconcile.State, error) {
		return reconcile.ReadActualFrom(d.kernel, read, d.cfg.Node.VIPInterface, d.owned, sysctlKeys)
	})
	d.checkBackends()
}
