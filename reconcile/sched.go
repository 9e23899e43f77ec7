package reconcile

import "github.com/ravel-lb/ravel/netops"

// ZeroPolicy is how ravel keeps an IPVS scheduler from refusing clients because of a
// destination at weight 0 (a node without ready pods, a draining destination). Measured on
// the kernel (test/e2e/scenarios/28-director-sched-weight0.sh): rr wrr lc wlc lblc lblcr sed
// nq fo ovf skip weight 0 in their lookup and need nothing; sh and dh give every destination,
// weight 0 or not, a bucket of their hash table, and mh keeps a drained destination's buckets
// (from its last non-zero weight): a client hashed there gets no destination unless the
// scheduler falls back.
type ZeroPolicy struct {
	// Fallback sets the scheduler's fallback flag (sh-fallback, mh-fallback): a client hashed
	// to a weight-0 destination goes on to an available one, so a drain refuses no client.
	Fallback bool
	// Omit leaves weight-0 destinations out of the desired state. Under sh a weight-0
	// destination still holds a bucket, and sh-fallback probes linearly from there: every
	// client of that bucket goes to the next destination of the table, so many weight-0
	// destinations crowd a few live ones (45 of 50 clients on one of two, on the kernel).
	// Under dh, which has no fallback, a weight-0 destination would refuse its clients.
	Omit bool
}

// CanDrain reports whether a leaving destination may stay at weight 0 until it drains. A
// scheduler that omits weight 0 and cannot fall back (dh) deletes it at once instead: at
// weight 0 it would refuse every new client hashed to it (under dh, every client of the VIP)
// for the whole drain.
func (p ZeroPolicy) CanDrain() bool { return p.Fallback || !p.Omit }

// SchedZeroPolicy is the ZeroPolicy of scheduler sched; a scheduler ravel does not know gets
// none.
func SchedZeroPolicy(sched string) ZeroPolicy {
	switch sched {
	case "sh":
		return ZeroPolicy{Fallback: true, Omit: true}
	case "mh":
		// mh gives a destination added at weight 0 no bucket: omitting it changes nothing.
		return ZeroPolicy{Fallback: true}
	case "dh":
		return ZeroPolicy{Omit: true}
	}
	return ZeroPolicy{}
}

// serviceFlags are the scheduler flags a service of scheduler sched gets: the configured ones,
// plus the fallback flag where the scheduler needs it (IP_VS_SVC_F_SCHED_SH_FALLBACK and
// IP_VS_SVC_F_SCHED_MH_FALLBACK are both SCHED1).
func serviceFlags(sched string, configured netops.SchedFlags) netops.SchedFlags {
	if SchedZeroPolicy(sched).Fallback {
		return configured | netops.FlagSched1
	}
	return configured
}
