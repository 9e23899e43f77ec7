package daemon

import (
	"context"
	"time"

	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/reconcile"
)

// A director's first full sync reads the whole IPVS table. At 10,000 services that is 10,000
// dumps, which the kernel serves one at a time under its IPVS mutex (about 5 s in the QEMU
// guest), and they used to start only once the config was parsed (4-5 s more there). A
// Prefetch reads the table while the config is parsed, mostly on the other CPU, and the first
// full sync takes that read instead of making its own when it is complete and recent
// (prefetchMaxAge: a sync that waits longer, for a first Kubernetes snapshot say, reads
// again). Every service is read, as which VIPs are ravel's is known only from the config;
// ReadActualFrom keeps the owned ones, as ReadActual does. Nothing else changes ravel's IPVS
// services while it starts, and every later sync reads the kernel itself.

// prefetchMaxAge is the age beyond which the first sync reads the kernel again.
const prefetchMaxAge = 10 * time.Second

// Prefetch is a read of the IPVS table made during start-up.
type Prefetch struct {
	done   chan struct{}
	cancel context.CancelFunc
	read   *reconcile.IPVSRead
	at     time.Time // when the read ended
}

// StartPrefetch starts reading every IPVS service of k, destinations included.
func StartPrefetch(k netops.IPVS) *Prefetch {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prefetch{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		p.read = reconcile.ReadIPVS(ctx, k, func(netops.Service) bool { return true })
		p.at = time.Now()
	}()
	return p
}

// Cancel stops a read nobody will take (the node is a realserver) and waits for it to end.
func (p *Prefetch) Cancel() {
	p.cancel()
	<-p.done
}

// take waits for the read to end and returns it, or nil and why not when it is incomplete or
// ended more than prefetchMaxAge before now.
func (p *Prefetch) take(now time.Time) (*reconcile.IPVSRead, string) {
	<-p.done
	switch age := now.Sub(p.at); {
	case p.read.Err() != nil:
		return nil, p.read.Err().Error()
	case age > prefetchMaxAge:
		return nil, "it is " + age.Round(time.Millisecond).String() + " old"
	}
	return p.read, ""
}

// SetPrefetch gives the director a read of the IPVS table for its first full sync.
func (d *Director) SetPrefetch(p *Prefetch) { d.prefetch = p }

// readActual reads the kernel for a full sync: from the start-up read when this is the first
// sync and that read can be taken, else from the kernel now.
func (d *Director) readActual(sysctlKeys []string) (*reconcile.State, error) {
	dev := d.cfg.Node.VIPInterface
	if p := d.prefetch; p != nil {
		d.prefetch = nil
		start := time.Now()
		r, why := p.take(start)
		if r != nil {
			d.log.Info("first sync: taking the IPVS table read during start-up", "services", r.Services(),
				"age", start.Sub(p.at).Round(time.Millisecond), "waited", time.Since(start).Round(time.Millisecond))
			return reconcile.ReadActualFrom(d.kernel, r, dev, d.owned, sysctlKeys)
		}
		d.log.Info("first sync: reading the kernel again, the read made during start-up is not used", "reason", why)
	}
	return reconcile.ReadActual(d.kernel, dev, d.owned, sysctlKeys)
}
