package schema

import (
	"net/netip"
)

// APIVersion and Kind are the only accepted header values of a ClusterConfig file.
const (
	APIVersion = "ravel/v1"
	Kind       = "ClusterConfig"
)

// Tags: `yaml` is the key; `validate` holds the field rules that package config checks with
// go-playground/validator ("-" on a key of a service, a backend or an ipvs block that has no
// rule spares the validator a visit per service); `schema` holds what the JSON Schema needs
// beyond them (required keys, enums of normalized values, enums read in any case, unique lists, inheritance). Rules that
// relate several keys are in package config, and documented on the keys here.

// ClusterConfig is one ravel configuration file: the machine it runs on, where endpoints come
// from, the VIPs it may bind, and the services it load-balances.
type ClusterConfig struct {
	// APIVersion is the version of the format; it must be "ravel/v1".
	APIVersion string `yaml:"apiVersion" json:"apiVersion" schema:"required,const=APIVersion"`
	// Kind is the kind of document; it must be "ClusterConfig".
	Kind string `yaml:"kind" json:"kind" schema:"required,const=Kind"`
	// Node describes this machine. Each key can be overridden by a flag of `ravel run`. A
	// reload cannot change it (restart ravel).
	Node Node `yaml:"node" json:"node"`
	// Kubernetes, when present, makes ravel follow live EndpointSlices. Omit it to run from
	// static backends only. A reload can change its contents, not add or remove it.
	Kubernetes *Kubernetes `yaml:"kubernetes,omitempty" json:"kubernetes,omitempty"`
	// VIPPool lists the addresses ravel may bind and manage. Every service vip must be in it,
	// and ravel never touches an IPVS service whose address is outside it. To retire a VIP,
	// remove its services first and keep it in the pool until ravel has applied that: an
	// address dropped from the pool is no longer ravel's, so its services and binding stay.
	VIPPool []netip.Addr `yaml:"vipPool" json:"vipPool" schema:"unique"`
	// Defaults are applied to each service that does not set its own value.
	Defaults Defaults `yaml:"defaults" json:"defaults"`
	// Services are the virtual services: one per vip:port, for each of its protocols.
	Services []Service `yaml:"services" json:"services" validate:"dive"`
	// Colocation is isolated (the director's own node never receives traffic) or colocated
	// (the director also serves its own pods, in proportion to their share).
	Colocation string `yaml:"colocation" json:"colocation" validate:"oneof=isolated colocated"`
	// IPVSSysctls are written to /proc/sys/net/ipv4/vs/<key>, for example conntrack: 1 or
	// sloppy_tcp: 1. Keys are plain names (lowercase letters, digits and '_'): a key can never
	// reach a file outside that directory. They apply to IPv6 services too: IPVS keeps one
	// set of settings for both families, under net/ipv4/vs (there is no net/ipv6/vs).
	IPVSSysctls map[string]int `yaml:"ipvsSysctls" json:"ipvsSysctls" schema:"keys=SysctlKey"`
	// Coordinator configures the director/realserver failover ports. A reload cannot change it.
	Coordinator Coordinator `yaml:"coordinator" json:"coordinator"`
	// Rules chooses where the realserver's and colocated director's rules go: iptables
	// chains or an nftables table of ravel's own.
	Rules Rules `yaml:"rules" json:"rules"`
	// IPTables configures the realserver and colocation chains.
	IPTables IPTables `yaml:"iptables" json:"iptables"`
	// Health configures the realservers' health endpoint and the director's checks of it.
	Health Health `yaml:"health" json:"health"`
	// Management adds a service on one port of every VIP of the pool.
	Management Management `yaml:"management" json:"management"`
	// ARP configures gratuitous ARP announcements of the director's VIPs.
	ARP ARP `yaml:"arp" json:"arp"`
	// Resync is the period of the full resync against the kernel, which repairs drift.
	Resync Duration `yaml:"resync" json:"resync"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics" json:"metrics"`
	// BGP configures the speaker of node.role bgp; other roles ignore it. A reload changes its
	// peers and attributes by diff; asn, routerId and listenPort need a restart.
	BGP *BGP `yaml:"bgp,omitempty" json:"bgp,omitempty"`
}

// BGP is the embedded speaker's configuration: the VIPs are announced as /32 (IPv4) and /128
// (IPv6) routes, each to the peers of its family.
type BGP struct {
	// ASN is this speaker's autonomous system number, 1..4294967294 (0 and 4294967295 are
	// reserved).
	ASN int64 `yaml:"asn" json:"asn" validate:"min=1,max=4294967294" schema:"required"`
	// RouterID is the BGP identifier, an IPv4 address; empty means node.interface's address.
	RouterID *netip.Addr `yaml:"routerId,omitempty" json:"routerId,omitempty"`
	// ListenPort is the port the speaker accepts sessions on; -1 (the default) accepts none
	// (ravel connects to its peers).
	ListenPort int `yaml:"listenPort" json:"listenPort" validate:"min=-1,max=65535"`
	// Peers are the routers to announce to.
	Peers []BGPPeer `yaml:"peers" json:"peers" validate:"min=1,dive"`
	// Communities are added to every announcement, as ASN:VALUE (each 0..65535).
	Communities []string `yaml:"communities" json:"communities" schema:"unique"`
	// LargeCommunities are added to every announcement, as GLOBAL:LOCAL1:LOCAL2.
	LargeCommunities []string `yaml:"largeCommunities" json:"largeCommunities" schema:"unique"`
	// LocalPreference of the announcements (iBGP); 0 means not sent.
	LocalPreference int64 `yaml:"localPreference" json:"localPreference" validate:"min=0,max=4294967295"`
	// MED (multi-exit discriminator) of the announcements; 0 means not sent.
	MED int64 `yaml:"med" json:"med" validate:"min=0,max=4294967295"`
	// NextHop of the announcements of its family (IPv4 or IPv6); empty, and for the other
	// family, the session's local address.
	NextHop *netip.Addr `yaml:"nextHop,omitempty" json:"nextHop,omitempty"`
}

// BGPPeer is one BGP neighbour.
type BGPPeer struct {
	// Address of the peer, IPv4 or IPv6: the session carries the routes of the VIPs of its
	// family.
	Address netip.Addr `yaml:"address" json:"address" schema:"required"`
	// ASN of the peer; the session is iBGP when it equals bgp.asn.
	ASN int64 `yaml:"asn" json:"asn" validate:"min=1,max=4294967294" schema:"required"`
	// Port of the peer; 0 means 179.
	Port int `yaml:"port,omitempty" json:"port,omitempty" validate:"port0"`
	// Password for TCP MD5 signatures (RFC 2385), at most 80 characters; empty means none.
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// HoldTime is the hold timer: 0 (no keepalives) or at least 3s. Default 90s.
	HoldTime Duration `yaml:"holdTime" json:"holdTime"`
	// KeepaliveTime must be below holdTime. Default 30s.
	KeepaliveTime Duration `yaml:"keepaliveTime" json:"keepaliveTime"`
	// ConnectRetry is the wait between connection attempts. Default 5s.
	ConnectRetry Duration `yaml:"connectRetry" json:"connectRetry"`
	// Multihop is the TTL for a peer that is not directly connected; 0 means directly connected.
	Multihop int `yaml:"multihop,omitempty" json:"multihop,omitempty" validate:"min=0,max=255"`
	// BFD detects a dead path in BFD's interval × multiplier instead of the hold time.
	BFD BFD `yaml:"bfd" json:"bfd"`
	// GracefulRestart keeps the routes on the peer through a restart of ravel.
	GracefulRestart GracefulRestart `yaml:"gracefulRestart" json:"gracefulRestart"`
}

// BFD configures bidirectional forwarding detection with a peer.
type BFD struct {
	// Enabled turns BFD on for this peer.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// MinInterval between BFD packets. Default 300ms.
	MinInterval Duration `yaml:"minInterval" json:"minInterval"`
	// Multiplier: packets missed before the path is down, 1..255. Default 3.
	Multiplier int `yaml:"multiplier" json:"multiplier" validate:"min=1,max=255"`
}

// GracefulRestart configures BGP graceful restart (RFC 4724) with a peer.
type GracefulRestart struct {
	// Enabled turns graceful restart on for this peer.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// RestartTime is how long the peer keeps ravel's routes while it restarts, 1s..4095s.
	// Default 120s.
	RestartTime Duration `yaml:"restartTime" json:"restartTime"`
}

// Roles of a node.
const (
	RoleDirector   = "director"
	RoleRealserver = "realserver"
	RoleBGP        = "bgp"
)

// Directs reports whether role programs IPVS: director, and bgp (a director that announces
// its VIPs by BGP instead of ARP).
func Directs(role string) bool { return role == RoleDirector || role == RoleBGP }

// Node describes the machine ravel runs on.
type Node struct {
	// Name is the Kubernetes node name of this machine; empty means the hostname, lowercased
	// as kubelet does.
	Name string `yaml:"name" json:"name"`
	// Role is director (program IPVS and bind the VIPs, announce them by gratuitous ARP),
	// realserver (accept traffic for the VIPs) or bgp (a director that announces its serving
	// VIPs to the bgp peers instead of by ARP; needs the bgp section).
	Role string `yaml:"role" json:"role" validate:"oneof=director realserver bgp"`
	// Interface is the primary interface: ARP and neighbour announcements, tunnel source. At most 15
	// letters, digits, '.', '_', ':' or '-'.
	Interface string `yaml:"interface" json:"interface" validate:"ifname"`
	// VIPInterface is the dummy device ravel creates and owns and binds the VIPs on, or lo. It
	// must differ from interface.
	VIPInterface string `yaml:"vipInterface" json:"vipInterface" validate:"ifname"`
	// Gateway, when set, is the target of the VIPs' announcements of its family: gratuitous
	// ARP for an IPv4 gateway, neighbour advertisements for an IPv6 one; empty means
	// broadcast (all-nodes multicast) announcements only.
	Gateway *netip.Addr `yaml:"gateway,omitempty" json:"gateway,omitempty"`
}

// Kubernetes says how to reach the cluster and which nodes may receive traffic.
type Kubernetes struct {
	// Kubeconfig is the path of a kubeconfig file; empty means in-cluster configuration.
	Kubeconfig string `yaml:"kubeconfig" json:"kubeconfig"`
	// NodeSelector lists labels a node must carry to ever receive traffic. It is a security
	// boundary: a node without them never becomes a destination, whatever pods it runs.
	NodeSelector map[string]string `yaml:"nodeSelector" json:"nodeSelector"`
	// IncludeCordoned lets cordoned (unschedulable) nodes keep receiving traffic.
	IncludeCordoned bool `yaml:"includeCordoned" json:"includeCordoned"`
	// Debounce coalesces bursts of cluster events into one snapshot.
	Debounce Debounce `yaml:"debounce" json:"debounce"`
	// KeepLastEndpoints is the safety valve: when the API is unreachable, or a re-list suddenly
	// returns nothing for services that had endpoints, keep programming the last known ones.
	KeepLastEndpoints bool `yaml:"keepLastEndpoints" json:"keepLastEndpoints"`
}

// Debounce is a quiet period and a maximum delay: a snapshot is published once no event
// arrived for Quiet, and at the latest MaxDelay after the first unpublished event.
type Debounce struct {
	// Quiet is how long no event must arrive before a snapshot is published.
	Quiet Duration `yaml:"quiet" json:"quiet"`
	// MaxDelay is the longest a change waits for a quiet period.
	MaxDelay Duration `yaml:"maxDelay" json:"maxDelay"`
}

// Defaults are inherited by services that do not set a value.
type Defaults struct {
	// Protocols of each service that does not list its own: tcp, udp or both (case is
	// ignored: TCP is tcp).
	Protocols []string `yaml:"protocols" json:"protocols" validate:"min=1,dive,oneof=tcp udp" schema:"unique,anycase"`
	// IPVS options of each service.
	IPVS IPVSOptions `yaml:"ipvs" json:"ipvs"`
	// DrainTimeout is how long a leaving destination keeps weight 0 before it is deleted
	// (it goes earlier once it has no active and no inactive connections).
	DrainTimeout Duration `yaml:"drainTimeout" json:"drainTimeout"`
	// HealthCheck is the check of each static backend of a service that does not set its
	// own; type none (the default) checks nothing.
	HealthCheck HealthCheck `yaml:"healthCheck" json:"healthCheck"`
}

// Schedulers the kernel offers (ip_vs_<name> modules).
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"}

// Forwarding methods.
const (
	ForwardDR     = "dr"
	ForwardTunnel = "tunnel"
	ForwardNAT    = "nat"
)

// Forwardings lists the forwarding methods.
var Forwardings = []string{ForwardDR, ForwardTunnel, ForwardNAT}

// SchedulerFlags maps each scheduler flag to the scheduler it belongs to.
var SchedulerFlags = map[string]string{
	"sh-fallback": "sh",
	"sh-port":     "sh",
	"mh-fallback": "mh",
	"mh-port":     "mh",
}

// IPVSOptions are a virtual service's IPVS settings. In a service, an unset field (empty string,
// nil list or nil number) inherits from defaults.ipvs.
type IPVSOptions struct {
	// Scheduler is the IPVS scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh. Case
	// is ignored (WRR is wrr); an unknown value becomes wrr, with a warning. Under sh and dh a
	// weight-0 destination is not programmed, and under dh a leaving one is deleted without a
	// drain (see "Weight 0 and the schedulers").
	Scheduler string `yaml:"scheduler,omitempty" json:"scheduler,omitempty" validate:"-" schema:"enum=Schedulers,normalized,anycase"`
	// Forwarding is the forwarding method: dr (direct routing), tunnel (IPIP) or nat
	// (masquerading). Case is ignored (NAT is nat); an unknown value becomes dr, with a warning.
	// nat is refused for a service with a kubernetes target (static backends only).
	Forwarding string `yaml:"forwarding,omitempty" json:"forwarding,omitempty" validate:"-" schema:"enum=Forwardings,normalized,anycase"`
	// Flags are scheduler flags: sh-fallback and sh-port for sh, mh-fallback and mh-port for
	// mh, in any case. Unknown flags, repeated flags and flags of another scheduler are
	// dropped, with a warning. sh-fallback and mh-fallback are always set, listed or not.
	Flags []string `yaml:"flags" json:"flags" validate:"-" schema:"enum=SchedulerFlags,unique,normalized,anycase"`
	// UpperThreshold (X) is the service's total connection limit, split across realservers in
	// proportion to weight; 0 means none.
	UpperThreshold *int `yaml:"upperThreshold,omitempty" json:"upperThreshold,omitempty" validate:"omitnil,min=0"`
	// LowerThreshold (Y): a realserver over its limit accepts again below this. When set,
	// X > Y > 0.
	LowerThreshold *int `yaml:"lowerThreshold,omitempty" json:"lowerThreshold,omitempty" validate:"omitnil,min=0"`
}

// Service is one virtual service: a VIP and port, with exactly one source of realservers.
type Service struct {
	// Name is an optional label for logs and metrics.
	Name string `yaml:"name,omitempty" json:"name,omitempty" validate:"-"`
	// VIP is the virtual address, IPv4 or IPv6; it must be in vipPool. Loopback, link-local and
	// the node's gateway are refused. Its backends and sorry server are of its family.
	VIP netip.Addr `yaml:"vip" json:"vip" validate:"-" schema:"required"`
	// Port is the virtual port, 1..65535. A vip:port:protocol is served by one service only.
	Port int `yaml:"port" json:"port" validate:"port" schema:"required"`
	// Protocols of this service; unset inherits defaults.protocols.
	Protocols []string `yaml:"protocols,omitempty" json:"protocols,omitempty" validate:"omitnil,min=1,dive,oneof=tcp udp" schema:"unique,anycase,inherit=defaults.protocols"`
	// Kubernetes names the Kubernetes service whose ready endpoints back this one. It needs
	// the top-level kubernetes section. A service sets exactly one of kubernetes and backends.
	Kubernetes *KubeTarget `yaml:"kubernetes,omitempty" json:"kubernetes,omitempty"`
	// Backends are static realservers, for use without Kubernetes. A service sets exactly one
	// of kubernetes and backends.
	Backends []Backend `yaml:"backends,omitempty" json:"backends,omitempty" validate:"dive"`
	// IPVS overrides defaults.ipvs for this service: each key it leaves out is inherited.
	IPVS *IPVSOptions `yaml:"ipvs,omitempty" json:"ipvs,omitempty" schema:"inherit=defaults.ipvs"`
	// HealthCheck overrides defaults.healthCheck for the static backends of this service:
	// each key it leaves out is inherited. A kubernetes target is checked through the
	// realservers' health endpoints instead (see health), and may not set it.
	HealthCheck *HealthCheck `yaml:"healthCheck,omitempty" json:"healthCheck,omitempty" schema:"inherit=defaults.healthCheck"`
	// SorryServer receives the service's new connections only while none of its backends
	// passes its health check (static backends only).
	SorryServer *SorryServer `yaml:"sorryServer,omitempty" json:"sorryServer,omitempty"`
}

// Health check types.
const (
	CheckTCP  = "tcp"
	CheckHTTP = "http"
	CheckNone = "none"
)

// HealthCheck is how the director checks a static backend. A backend that fails fall checks
// in a row gets weight 0 (its connections drain, none is cut) until it passes rise in a row.
// In a service, an unset key (empty or 0) inherits from defaults.healthCheck.
type HealthCheck struct {
	// Type is tcp (a connect), http (a GET whose status must be expectStatus) or none.
	Type string `yaml:"type,omitempty" json:"type,omitempty" validate:"omitempty,oneof=tcp http none"`
	// Port to check; unset means the backend's port.
	Port int `yaml:"port,omitempty" json:"port,omitempty" validate:"port0"`
	// Path of the http check's request; it starts with '/'. Default /.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// ExpectStatus is the HTTP status that counts as healthy, 100..599. Default 200.
	ExpectStatus int `yaml:"expectStatus,omitempty" json:"expectStatus,omitempty" validate:"omitempty,min=100,max=599"`
	// Host is the http check's Host header; empty means the backend's address.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// Interval between two checks of a backend. Default 2s.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Timeout of one check; it must be shorter than interval. Default 1s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Rise is how many checks in a row a failed backend must pass to get its weight back.
	// Default 2.
	Rise int `yaml:"rise,omitempty" json:"rise,omitempty" validate:"min=0"`
	// Fall is how many checks in a row a backend must fail to get weight 0. Default 2.
	Fall int `yaml:"fall,omitempty" json:"fall,omitempty" validate:"min=0"`
}

// SorryServer is where a service's new connections go while no backend is healthy.
type SorryServer struct {
	// Address of the sorry server, of the vip's family; loopback and link-local are refused.
	Address netip.Addr `yaml:"address" json:"address" schema:"required"`
	// Port of the sorry server; 0 means the service port. Another port needs forwarding nat.
	Port int `yaml:"port,omitempty" json:"port,omitempty" validate:"port0"`
}

// KubeTarget names a port of a Kubernetes service.
type KubeTarget struct {
	// Namespace of the Kubernetes service.
	Namespace string `yaml:"namespace" json:"namespace" validate:"required,k8sname"`
	// Service is the name of the Kubernetes service.
	Service string `yaml:"service" json:"service" validate:"required,k8sname"`
	// PortName is the name of the service port; it may be empty when the service has exactly
	// one unnamed port.
	PortName string `yaml:"portName" json:"portName" validate:"omitempty,k8sname"`
}

// Backend is a static realserver.
type Backend struct {
	// Address of the realserver, of the vip's family (IPv4 or IPv6); loopback and link-local
	// are refused.
	Address netip.Addr `yaml:"address" json:"address" validate:"-" schema:"required"`
	// Port is the realserver port; 0 means the service port. Another port than the
	// service's needs forwarding nat (dr and tunnel cannot rewrite it).
	Port int `yaml:"port,omitempty" json:"port,omitempty" validate:"port0"`
	// Weight is 0..65535; unset means 1.
	Weight *int `yaml:"weight,omitempty" json:"weight,omitempty" validate:"omitnil,weight"`
}

// Colocation modes.
const (
	ColocationIsolated  = "isolated"
	ColocationColocated = "colocated"
)

// Coordinator configures how realservers notice a director's absence.
type Coordinator struct {
	// Listen is the one address the director binds its coordinator ports on: 127.0.0.1 by
	// default, so that the ports answer neither on the VIPs nor from other machines. A
	// realserver probes this address unless ravel run --coordinator-host names another, and
	// trusts a local listener only when root owns it. A reload cannot change it.
	Listen netip.Addr `yaml:"listen" json:"listen"`
	// Ports the director listens on; realservers probe the first.
	Ports []int `yaml:"ports" json:"ports" validate:"min=1,dive,port" schema:"unique"`
	// FailoverTimeout is how long the director must be gone before realservers take over.
	FailoverTimeout Duration `yaml:"failoverTimeout" json:"failoverTimeout"`
}

// Rules backends.
const (
	RulesAuto     = "auto"
	RulesIPTables = "iptables"
	RulesNFTables = "nftables"
)

// Rules chooses the packet filter that serves VIP traffic to a node's own pods.
type Rules struct {
	// Backend is iptables (chains in the nat table, see iptables), nftables (one table of
	// ravel's own, family inet, for IPv4 and IPv6) or auto: nftables when the nft command
	// (1.0.1 or later) works and the kernel takes a table, else iptables.
	// Starting with one backend removes ravel's rules from the other, and only those. A
	// reload cannot change it.
	Backend string `yaml:"backend" json:"backend" validate:"oneof=iptables nftables auto"`
	// Table is the nftables table ravel owns (family inet) with backend nftables: a letter,
	// then up to 31 letters, digits, '_' or '-'. Tables of other programs (kube-proxy,
	// firewalld, the distribution's filter) are refused. A reload cannot change it.
	Table string `yaml:"table" json:"table" validate:"table"`
	// InZone serves VIPs to clients inside the zone on a realserver: its own processes and
	// pods reach a VIP:port it has no ready pod of through the ready pods of other nodes, or
	// a static service's backends (see docs/config.md, "Clients inside the zone"). false
	// leaves such connections to the node's own socket on the VIP, which refuses them (the
	// seed's behaviour), and keeps each node's rules to its own pods.
	InZone bool `yaml:"inZone" json:"inZone"`
}

// IPTables configures the chains ravel owns in the nat table.
type IPTables struct {
	// Chain is the name of ravel's top chain and the prefix of every chain it owns: a letter,
	// then up to 12 letters, digits or '_'. A reload cannot change it.
	Chain string `yaml:"chain" json:"chain" validate:"chain"`
	// Masquerade makes pods see the node's address instead of the client's (with either
	// rules.backend).
	Masquerade bool `yaml:"masquerade" json:"masquerade"`
	// Backend is the iptables backend ravel writes: nft, legacy, or auto (the one holding
	// kube-proxy's KUBE-SERVICES when only one does, else the one `iptables` on PATH uses).
	// ravel's jump must sit in front of KUBE-SERVICES in kube-proxy's backend; a mismatch is
	// reported at start and on every resync. A reload cannot change it.
	Backend string `yaml:"backend" json:"backend" validate:"oneof=auto nft legacy"`
}

// Health configures the realserver's health endpoint (Kubernetes mode) and the director's
// checks of it. Static backends are checked by their services' healthCheck instead.
type Health struct {
	// Listen is host:port of the realserver's health endpoint, plain HTTP and read-only. An
	// empty host means the addresses of node.interface, its first IPv4 and first global IPv6
	// one. The director checks every realserver node's address of each family at this port.
	// A reload cannot change it.
	Listen string `yaml:"listen" json:"listen" validate:"hostport"`
	// CheckRealservers makes the director check each realserver node's endpoint and give a
	// node weight 0 for the services it says it does not serve.
	CheckRealservers bool `yaml:"checkRealservers" json:"checkRealservers"`
	// Interval between two checks of a realserver node: one request per node, whatever the
	// number of services.
	Interval Duration `yaml:"interval" json:"interval"`
	// Timeout of one check; it must be shorter than interval.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Rise is how many good answers in a row give a node its weight back.
	Rise int `yaml:"rise" json:"rise" validate:"min=1"`
	// Fall is how many bad answers in a row give a node weight 0.
	Fall int `yaml:"fall" json:"fall" validate:"min=1"`
	// DrainDelay is how long a stopping realserver answers "draining" before it removes its
	// rules; 0 means 2 × interval + 1s, time for the director to see it.
	DrainDelay Duration `yaml:"drainDelay" json:"drainDelay"`
	// MaxInFlight bounds the director's checks running at once (nodes and backends).
	MaxInFlight int `yaml:"maxInFlight" json:"maxInFlight" validate:"min=1"`
}

// Management configures the management service (Ravel's autoconfigured service).
type Management struct {
	// Port of the service on every VIP of vipPool; 0 means off. A configured service on the
	// same vip:port:protocol is an error.
	Port int `yaml:"port" json:"port" validate:"port0off"`
	// Protocol of the service: tcp or udp (udp needs a kubernetes target).
	Protocol string `yaml:"protocol" json:"protocol" validate:"oneof=tcp udp"`
	// Kubernetes names the service that backs port on every VIP. Without it, port goes to
	// the realservers' health endpoints (with a kubernetes section), or the director answers
	// it itself (static backends only): curl http://VIP:port/healthz names who answered.
	Kubernetes *KubeTarget `yaml:"kubernetes,omitempty" json:"kubernetes,omitempty"`
}

// ARP configures gratuitous ARP.
type ARP struct {
	// Interval between announcements of each bound VIP; 0 turns periodic announcements off
	// (a VIP is still announced once when it is bound).
	Interval Duration `yaml:"interval" json:"interval"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is host:port of the HTTP endpoint serving /metrics, /healthz, /readyz and /status
	// (":10234" listens on every address); empty turns it off. A reload cannot change it.
	Listen string `yaml:"listen" json:"listen" validate:"omitempty,hostport"`
}
