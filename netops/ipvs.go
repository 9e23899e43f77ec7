package netops

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/moby/ipvs"
)

var _ IPVS = (*KernelIPVS)(nil)

// KernelIPVS programs IPVS over generic netlink with github.com/moby/ipvs, in the network
// namespace it was created in (the netlink socket stays bound to it).
//
// Quirks of moby/ipvs v1.1.0 handled here:
//   - ipvs.New never fails for want of IPVS: the generic-netlink family id is resolved once
//     per process (sync.Once) and, when that fails, stays 0. Requests then go to message
//     type 0, which the kernel acknowledges as a no-op: GetServices returns an empty list and
//     NewService returns nil without doing anything. NewIPVS therefore probes with a request
//     that must be answered (see probe) and fails when it is not. Because of the sync.Once,
//     loading ip_vs after the first attempt needs a process restart.
//   - ipvs.New runs `modprobe -va ip_vs` itself (once per process) and logs through logrus
//     when that fails. ravel never runs ipvsadm.
//   - One Handle shares one socket and execute() drops replies whose sequence number is not
//     its own, so concurrent requests could steal each other's answers: every call holds mu.
//     ListedDestinations, which a full read calls once per service, does not use moby: it
//     dumps on sockets of its own, several at once (ipvs_read.go).
//   - Errors are the bare syscall.Errno from the kernel's NLMSG_ERROR; they are classified in
//     kernelError (ESRCH missing service, ENOENT missing destination or scheduler, EEXIST,
//     EINVAL/ERANGE bad values).
//   - Listing the destinations of a missing service is a dump, and the kernel ends a dump of
//     a missing service without an error: Destinations asks for the service first.
//   - A destination's weight is read back as a u16 (native.Uint16 of a u32 attribute): the
//     kernel accepts up to 2^31-1 but 65536 would read back as 0. Weights above MaxWeight are
//     refused before the kernel is asked (checkDest).
//   - moby never sends the destination's address family: the kernel takes the service's.
//   - moby sends one request per write and waits for its answer. Apply (ipvs_batch.go)
//     writes up to 256 on a socket of its own, the same attributes, and reads the acks of
//     the failures and of the last one.
type KernelIPVS struct {
	mu       sync.Mutex // serializes every request on h and batch
	h        *ipvs.Handle
	batch    *ipvsBatcher     // Apply's own socket: many requests per write (ipvs_batch.go)
	readers  chan *ipvsReader // ListedDestinations' sockets, taken one per call (ipvs_read.go)
	requests atomic.Int64     // netlink requests sent (Services, Destinations, DestStats, ListedDestinations, Apply)
}

// NewIPVS returns an IPVS for the current network namespace (of the calling thread).
func NewIPVS() (*KernelIPVS, error) { return NewIPVSInNetns("") }

// NewIPVSInNetns returns an IPVS for the network namespace at path (e.g.
// /var/run/netns/NAME or /proc/PID/ns/net); "" means the current one.
func NewIPVSInNetns(path string) (*KernelIPVS, error) {
	h, err := ipvs.New(path)
	if err != nil {
		return nil, fmt.Errorf("open IPVS netlink socket in %q: %w", path, err)
	}
	if err := probe(h); err != nil {
		h.Close()
		return nil, err
	}
	b, err := newIPVSBatcher(path)
	if err != nil {
		h.Close()
		return nil, err
	}
	k := &KernelIPVS{h: h, batch: b, readers: make(chan *ipvsReader, ipvsReaders)}
	for range ipvsReaders {
		r, err := newIPVSReader(path, b.family)
		if err != nil {
			k.Close()
			return nil, err
		}
		k.readers <- r
	}
	return k, nil
}

// probe asks for one service that need not exist. A working IPVS answers with it or with
// ESRCH; the no-op acknowledgement of an unresolved family (see KernelIPVS) yields zero
// services and no errno.
func probe(h *ipvs.Handle) error {
	_, err := h.GetService(toIPVSService(Service{ServiceKey: ServiceKey{VIP: netip.IPv4Unspecified(), Proto: TCP}}))
	if err == nil || errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if errors.Is(err, syscall.EPERM) {
		// IPVS is there and refused us: the module is not the problem, the privilege is.
		return fmt.Errorf("IPVS refused the request: ravel needs CAP_NET_ADMIN (run it as root, or with the systemd unit's capabilities): %w", err)
	}
	return fmt.Errorf("IPVS is not available (load the ip_vs module, then restart: moby/ipvs resolves the IPVS netlink family once per process): %w", err)
}

// Close releases the netlink socket.
func (k *KernelIPVS) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.h.Close()
	k.batch.close()
	for len(k.readers) > 0 {
		(<-k.readers).close()
	}
	return nil
}

// Services returns every IPv4/IPv6 address service in the namespace, in the kernel's order.
// Firewall-mark services (no address) are left out: ServiceKey cannot name them and ravel
// never creates them.
func (k *KernelIPVS) Services() ([]Service, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	svcs, err := k.h.GetServices()
	k.requests.Add(1)
	if err != nil {
		return nil, kernelError(err, "list IPVS services")
	}
	out := make([]Service, 0, len(svcs))
	for _, s := range svcs {
		if s.FWMark != 0 {
			continue
		}
		vip, ok := netip.AddrFromSlice(s.Address)
		if !ok {
			return nil, fmt.Errorf("list IPVS services: bad address %v", s.Address)
		}
		out = append(out, Service{
			ServiceKey: ServiceKey{VIP: vip, Port: s.Port, Proto: Proto(s.Protocol)},
			Scheduler:  s.SchedName,
			// The kernel reports svc->flags whole: IP_VS_SVC_F_HASHED (0x2) is set on every
			// service in its table, and persistence (0x1) or one-packet (0x4) may be set on
			// foreign services. Keep the scheduler flags only.
			Flags: SchedFlags(s.Flags) & schedFlagMask,
		})
	}
	return out, nil
}

// AddService creates s.
func (k *KernelIPVS) AddService(s Service) error {
	if err := checkService(s); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return kernelError(k.h.NewService(toIPVSService(s)), "add service %s", fmtService(s))
}

// UpdateService changes the scheduler and flags of an existing service.
func (k *KernelIPVS) UpdateService(s Service) error {
	if err := checkService(s); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return kernelError(k.h.UpdateService(toIPVSService(s)), "update service %s", fmtService(s))
}

// DelService deletes a service and, in the kernel, its destinations.
func (k *KernelIPVS) DelService(key ServiceKey) error {
	if err := checkServiceKey(key); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return kernelError(k.h.DelService(toIPVSService(Service{ServiceKey: key})), "delete service %s", key)
}

// Destinations returns the destinations of key; ErrNotExist if the service is missing.
func (k *KernelIPVS) Destinations(key ServiceKey) ([]Destination, error) {
	ds, err := k.destinations(key)
	if err != nil {
		return nil, err
	}
	out := make([]Destination, 0, len(ds))
	for _, d := range ds {
		nd, err := fromIPVSDest(d)
		if err != nil {
			return nil, fmt.Errorf("list destinations of %s: %w", key, err)
		}
		out = append(out, nd)
	}
	return out, nil
}

// DestStats returns the live connection counters of one destination.
func (k *KernelIPVS) DestStats(key ServiceKey, dk DestKey) (DestStats, error) {
	if err := checkDestKey(key, dk); err != nil {
		return DestStats{}, err
	}
	ds, err := k.destinations(key)
	if err != nil {
		return DestStats{}, err
	}
	for _, d := range ds {
		a, ok := netip.AddrFromSlice(d.Address)
		if ok && a == dk.Addr && d.Port == dk.Port {
			return DestStats{ActiveConns: d.ActiveConnections, InactiveConns: d.InactiveConnections}, nil
		}
	}
	return DestStats{}, refuse(ErrNotExist, "destination %s of %s", dk, key)
}

// ListedDestinations returns the destinations of key and their counters from one dump. key
// comes from Services: no GetService first (see Destinations), and a service deleted since
// it was listed reads as having no destinations, which the next full read sees as missing.
func (k *KernelIPVS) ListedDestinations(key ServiceKey) ([]Destination, []DestStats, error) {
	if err := checkServiceKey(key); err != nil {
		return nil, nil, err
	}
	r := <-k.readers // calls run concurrently, one per reader (ipvs_read.go)
	ds, stats, err := r.dests(key)
	k.readers <- r
	k.requests.Add(1)
	if err != nil {
		return nil, nil, kernelError(err, "list destinations of service %s", key)
	}
	return ds, stats, nil
}

// Requests is the number of netlink requests sent so far (for benchmarks).
func (k *KernelIPVS) Requests() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.requests.Load()
}

func (k *KernelIPVS) destinations(key ServiceKey) ([]*ipvs.Destination, error) {
	if err := checkServiceKey(key); err != nil {
		return nil, err
	}
	svc := toIPVSService(Service{ServiceKey: key})
	k.mu.Lock()
	defer k.mu.Unlock()
	// A dump of the destinations of a missing service ends without an error: ask first.
	k.requests.Add(2)
	if _, err := k.h.GetService(svc); err != nil {
		return nil, kernelError(err, "list destinations of service %s", key)
	}
	ds, err := k.h.GetDestinations(svc)
	if err != nil {
		return nil, kernelError(err, "list destinations of service %s", key)
	}
	return ds, nil
}

// AddDestination adds d to the service key.
func (k *KernelIPVS) AddDestination(key ServiceKey, d Destination) error {
	if err := checkDest(key, d); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.h.NewDestination(toIPVSService(Service{ServiceKey: key}), toIPVSDest(d))
	return kernelError(err, "add destination %s to service %s", fmtDestOnly(d), key)
}

// UpdateDestination changes the weight, forwarding and thresholds of a destination.
func (k *KernelIPVS) UpdateDestination(key ServiceKey, d Destination) error {
	if err := checkDest(key, d); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.h.UpdateDestination(toIPVSService(Service{ServiceKey: key}), toIPVSDest(d))
	return kernelError(err, "update destination %s of service %s", fmtDestOnly(d), key)
}

// DelDestination removes a destination from the service key.
func (k *KernelIPVS) DelDestination(key ServiceKey, dk DestKey) error {
	if err := checkDestKey(key, dk); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.h.DelDestination(toIPVSService(Service{ServiceKey: key}), toIPVSDest(Destination{DestKey: dk}))
	return kernelError(err, "delete destination %s of service %s", dk, key)
}

func fmtDestOnly(d Destination) string {
	return fmt.Sprintf("%s %s w=%d x=%d y=%d", d.DestKey, d.Forward, d.Weight, d.Upper, d.Lower)
}

// Shorthands for the kernel's address families.
const (
	afInet  = syscall.AF_INET
	afInet6 = syscall.AF_INET6
)

// ipvsAF returns the address family of a.
func ipvsAF(a netip.Addr) uint16 {
	if a.Is4() {
		return afInet
	}
	return afInet6
}

// toIPVSService maps a Service to moby's. The netmask is the persistence granularity: all
// ones for IPv4 (as ipvsadm sends), a prefix length of 128 for IPv6 (the kernel refuses an
// IPv6 netmask outside 1..128 with EINVAL).
func toIPVSService(s Service) *ipvs.Service {
	out := &ipvs.Service{
		AddressFamily: ipvsAF(s.VIP),
		Address:       net.IP(s.VIP.AsSlice()),
		Protocol:      uint16(s.Proto),
		Port:          s.Port,
		SchedName:     s.Scheduler,
		Flags:         uint32(s.Flags),
		Netmask:       0xffffffff,
	}
	if s.VIP.Is6() {
		out.Netmask = 128
	}
	return out
}
