package netops

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
)

// Error classes shared by the real implementations and the fakes. Test with errors.Is.
var (
	// ErrExist: the object is already there (EEXIST).
	ErrExist = errors.New("already exists")
	// ErrNotExist: the object is not there (ESRCH / ENOENT).
	ErrNotExist = errors.New("does not exist")
	// ErrInvalid: the kernel refuses the value (EINVAL), e.g. a weight out of range.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotOwned: the object is outside what ravel may touch (checked before the kernel is asked).
	ErrNotOwned = errors.New("not owned by ravel")
)

// Proto is an IP protocol number (IPPROTO_TCP, IPPROTO_UDP).
type Proto uint16

// Protocols ravel programs.
const (
	TCP Proto = 6
	UDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto-%d", uint16(p))
}

// ParseProto parses "tcp" or "udp".
func ParseProto(s string) (Proto, error) {
	switch s {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q", s)
}

// ServiceKey identifies an IPVS virtual service.
type ServiceKey struct {
	VIP   netip.Addr
	Port  uint16
	Proto Proto
}

// Hash names k in rules that must fit a short name (an iptables chain): 12 base32 characters of
// sha256("vip:port:proto"), 60 bits, stable across restarts and independent of the service's
// name (10,000 services collide with odds below 1e-10).
func (k ServiceKey) Hash() string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s:%d:%s", k.VIP, k.Port, k.Proto)))
	return base32.StdEncoding.EncodeToString(sum[:])[:12]
}

func (k ServiceKey) String() string {
	return fmt.Sprintf("%s %s", k.Proto, netip.AddrPortFrom(k.VIP, k.Port))
}

// Compare orders keys by address, port, protocol.
func (k ServiceKey) Compare(o ServiceKey) int {
	if c := k.VIP.Compare(o.VIP); c != 0 {
		return c
	}
	if k.Port != o.Port {
		return cmpInt(int(k.Port), int(o.Port))
	}
	return cmpInt(int(k.Proto), int(o.Proto))
}

// LocalService is one VIP:port:protocol a node serves from its own pods: the seam between the
// realserver's desired state (reconcile.LocalServices) and a rules backend (iptables chains
// today), which renders it in its own form. It says nothing about how the rules look.
type LocalService struct {
	// Name names the service in the rules (e.g. "default/web:http", an iptables comment); it
	// may be empty.
	Name string
	// Key is the VIP, port and protocol the director forwards to this node.
	Key ServiceKey
	// Endpoints are the ready pods of this service on this node (pod IP and target port).
	Endpoints []netip.AddrPort
	// Probability is the share of new connections to the VIP this node's pods take before
	// anything else sees them: 1 on a realserver, local/total ready endpoints on a colocated
	// director (the rest falls through to IPVS). 0 serves nothing.
	Probability float64
	// Zone is where clients inside the zone (this node's own processes, and its pods) are
	// sent when Endpoints is empty: the ready endpoints on other nodes (pod addresses are
	// routable inside the cluster) or a static service's backends, each with its weight, so
	// that they are spread the way the director spreads. Traffic the director forwarded
	// never uses it: it keeps going to local pods only, or nowhere.
	Zone []Target
	// ZoneMasquerade says the Zone targets may not route replies back to pod addresses (static
	// backends outside the cluster): in-zone connections from pods are masqueraded too, not
	// only the node's own (whose source would be the VIP, bound on every realserver).
	ZoneMasquerade bool
}

// Target is an address to DNAT to and its weight (0 takes nothing).
type Target struct {
	Addr   netip.AddrPort
	Weight int
}

// SchedFlags are IPVS scheduler flags (IP_VS_SVC_F_SCHED1..3).
type SchedFlags uint32

// Kernel values of the scheduler flags: sh-fallback and mh-fallback are SCHED1, sh-port and
// mh-port are SCHED2 (include/uapi/linux/ip_vs.h).
const (
	FlagSched1 SchedFlags = 0x0008
	FlagSched2 SchedFlags = 0x0010
	FlagSched3 SchedFlags = 0x0020
)

// ParseSchedFlag maps a config flag name to its kernel bit.
func ParseSchedFlag(name string) (SchedFlags, bool) {
	switch name {
	case "sh-fallback", "mh-fallback":
		return FlagSched1, true
	case "sh-port", "mh-port":
		return FlagSched2, true
	}
	return 0, false
}

// Service is an IPVS virtual service.
type Service struct {
	ServiceKey
	Scheduler string
	Flags     SchedFlags
}

// Forward is a destination's forwarding method (IP_VS_CONN_F_* in the kernel).
type Forward uint8

// Forwarding methods.
const (
	ForwardDR Forward = iota
	ForwardTunnel
	ForwardNAT
)

func (f Forward) String() string {
	switch f {
	case ForwardDR:
		return "dr"
	case ForwardTunnel:
		return "tunnel"
	case ForwardNAT:
		return "nat"
	}
	return fmt.Sprintf("forward-%d", uint8(f))
}

// ParseForward parses "dr", "tunnel" or "nat".
func ParseForward(s string) (Forward, error) {
	switch s {
	case "dr":
		return ForwardDR, nil
	case "tunnel":
		return ForwardTunnel, nil
	case "nat":
		return ForwardNAT, nil
	}
	return 0, fmt.Errorf("unknown forwarding %q", s)
}

// MaxWeight is the largest weight and per-destination threshold the kernel accepts
// (the fields are u32 but ipvsadm and ravel keep them to 16 bits, as the seed did).
const MaxWeight = 65535

// DestKey identifies a destination within a virtual service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

func (k DestKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Destination is a realserver of a virtual service.
type Destination struct {
	DestKey
	Weight  int
	Forward Forward
	Upper   uint32 // upper connection threshold, 0 = none
	Lower   uint32 // lower connection threshold
}

// DestStats are a destination's live counters, read from the kernel.
type DestStats struct {
	ActiveConns   int
	InactiveConns int
}

// IPVS programs virtual services and their destinations in one network namespace.
//
// Services returns every service in the kernel, foreign ones included: the caller filters by
// ownership. Mutations return errors wrapping ErrExist, ErrNotExist or ErrInvalid.
type IPVS interface {
	Services() ([]Service, error)
	AddService(Service) error
	UpdateService(Service) error
	DelService(ServiceKey) error
	Destinations(ServiceKey) ([]Destination, error)
	DestStats(ServiceKey, DestKey) (DestStats, error)
	// ListedDestinations returns the destinations of a service that Services just listed,
	// each with its counters, in one request: a full read needs nothing else per service.
	// A service deleted since it was listed has none.
	ListedDestinations(ServiceKey) ([]Destination, []DestStats, error)
	AddDestination(ServiceKey, Destination) error
	UpdateDestination(ServiceKey, Destination) error
	DelDestination(ServiceKey, DestKey) error
	// Apply applies changes in order, as the methods above would one by one, and returns one
	// error per change (nil where it took). The kernel's sends many per write.
	Apply([]Change) []error
}

// Links manages ravel's dummy device, IPIP tunnel device and addresses.
type Links interface {
	// EnsureDummy creates the dummy device name if missing and sets it up. It fails with
	// ErrExist wrapped if name exists and is not a dummy device.
	EnsureDummy(name string) error
	// EnsureIPIP makes sure the IPIP decapsulation device (tunl0) exists and is up.
	EnsureIPIP(name string) error
	// EnsureIP6Tnl makes sure the IPv6 tunnel decapsulation device (ip6tnl0) exists and is
	// up.
	EnsureIP6Tnl(name string) error
	// Addrs lists the host and network addresses on dev (IPv4 and IPv6, link-local left
	// out).
	Addrs(dev string) ([]netip.Prefix, error)
	AddAddr(dev string, p netip.Prefix) error
	DelAddr(dev string, p netip.Prefix) error
}

// Sysctl reads and writes kernel parameters by key ("net/ipv4/vs/conntrack"), refusing keys
// outside the trees ravel may write with ErrNotOwned.
type Sysctl interface {
	Get(key string) (string, error)
	Set(key, value string) error
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Compare orders destination keys by address, then port.
func (k DestKey) Compare(o DestKey) int {
	if c := k.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	return cmpInt(int(k.Port), int(o.Port))
}
