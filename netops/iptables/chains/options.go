package chains

import (
	"fmt"
	"strings"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
)

// Table is the only iptables table ravel writes.
const Table = "nat"

// MaxChainLen is the longest chain name iptables accepts (XT_EXTENSION_MAXNAMELEN - 1, the same
// for the legacy and the nf_tables backend).
const MaxChainLen = 28

// hashLen is how many base32 characters of sha256(vip:port:proto) name a service chain: 60 bits,
// so that 10,000 services collide with odds below 1e-10, while leaving the prefix room.
const hashLen = 12

// Suffixes of the chains ravel owns below its top chain.
const (
	svcInfix   = "-SVC-"
	zsvInfix   = "-ZSV-" // as long as svcInfix: MaxPrefixLen holds for both
	zoneSuffix = "-ZONE"
	masqSuffix = "-MASQ"
	postSuffix = "-POSTROUTING"
)

// DefaultMasqMark is the mark bit ravel sets on connections to masquerade.
const DefaultMasqMark = 0x2000

// MaxPrefixLen is the longest top chain name (config iptables.chain) that leaves room for
// "<prefix>-SVC-<12 characters of hash>" (and "<prefix>-ZSV-<hash>", as long) within
// MaxChainLen.
const MaxPrefixLen = MaxChainLen - len(svcInfix) - hashLen

// Options are the node-wide settings of the chains (config section iptables).
type Options struct {
	// Chain is the top chain and the prefix of every chain ravel owns (default RAVEL). A chain
	// is owned when its name is Chain or starts with Chain + "-".
	Chain string
	// Masquerade makes pods see the node's address instead of the client's.
	Masquerade bool
	// MasqMark is the packet mark bit that asks for masquerade; 0 means DefaultMasqMark
	// (0x2000: kube-proxy uses 0x4000, kubelet 0x8000, Calico the upper 16 bits).
	MasqMark uint32
	// Family is the family of the table the chains go to (iptables or ip6tables); services
	// and endpoints of the other family are left out. 0 means IPv4.
	Family family.Family
	// DirectorInterfaces are the interfaces the traffic the director forwards arrives on: the
	// node's interface (config node.interface) and the tunnel device that decapsulates it
	// (tunl0 for IPv4, ip6tnl0 for IPv6). Such traffic never takes a service's Zone targets:
	// the zone chain returns at once for a packet that came in on one of them (in this order).
	// Everything else is in the zone: the node's own processes (OUTPUT, where a packet has no
	// input interface, so these rules never match there) and its pods (their veths). Each is
	// an interface name as ip(8) shows it; iptables' "+" suffix matches a prefix.
	DirectorInterfaces []string
}

// family is o.Family, IPv4 when unset.
func (o Options) family() family.Family {
	if o.Family == 0 {
		return family.IPv4
	}
	return o.Family
}

// Validate reports whether o.Chain can name ravel's chains in iptables-restore text: 1 to
// MaxPrefixLen characters of letters, digits, '-' and '_', not starting with '-'. Which names
// are free to take (not a built-in, not another program's family such as KUBE-*) is the
// config's rule: schema.ChainPrefixConflict, checked before a prefix reaches this package.
func (o Options) Validate() error {
	c := o.Chain
	switch {
	case c == "":
		return fmt.Errorf("chain name is empty")
	case len(c) > MaxPrefixLen:
		return fmt.Errorf("chain name %q is longer than %d characters (iptables allows %d, and %q is appended)",
			c, MaxPrefixLen, MaxChainLen, svcInfix+strings.Repeat("X", hashLen))
	case c[0] == '-':
		return fmt.Errorf("chain name %q starts with '-'", c)
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("chain name %q has %q: only letters, digits, '-' and '_' are allowed", c, r)
		}
	}
	for _, dev := range o.DirectorInterfaces {
		if err := validInterface(dev); err != nil {
			return fmt.Errorf("director interface %q: %w", dev, err)
		}
	}
	return nil
}

// maxIfaceLen is the longest interface name (IFNAMSIZ - 1).
const maxIfaceLen = 15

// validInterface accepts what the kernel accepts as an interface name (dev_valid_name: 1 to 15
// bytes, not "." or "..", no '/', ':' or blank), printable ASCII without quotes, so that
// "-i NAME" is written and printed back by iptables-save as is.
func validInterface(dev string) error {
	switch {
	case dev == "":
		return fmt.Errorf("empty")
	case len(dev) > maxIfaceLen:
		return fmt.Errorf("longer than %d characters", maxIfaceLen)
	case dev == "." || dev == "..":
		return fmt.Errorf("not an interface name")
	}
	for _, c := range []byte(dev) {
		if c <= ' ' || c > '~' || c == '/' || c == ':' || c == '"' || c == '\\' || c == '\'' || c == '!' {
			return fmt.Errorf("has %q", c)
		}
	}
	return nil
}

// Owned reports whether chain belongs to ravel under prefix: the top chain itself or any
// chain named prefix + "-...". "RAVELX" is not owned by "RAVEL".
func Owned(prefix, chain string) bool {
	return chain == prefix || strings.HasPrefix(chain, prefix+"-")
}

// ServiceChain is the name of the per-service chain of k: prefix-SVC- and 12 base32 characters
// of sha256("vip:port:proto"), stable across restarts and independent of the service's name.
func ServiceChain(prefix string, k netops.ServiceKey) string {
	return prefix + svcInfix + k.Hash()
}

// ZoneChain is the chain, jumped to by the last rule of the top chain, that sends in-zone
// clients of services without local endpoints to their Zone targets.
func ZoneChain(prefix string) string { return prefix + zoneSuffix }

// ZoneServiceChain is the per-service chain of k's Zone targets: prefix-ZSV- and the same hash
// as ServiceChain.
func ZoneServiceChain(prefix string, k netops.ServiceKey) string {
	return prefix + zsvInfix + k.Hash()
}

// MasqChain is the chain that marks a connection for masquerade.
func MasqChain(prefix string) string { return prefix + masqSuffix }

// PostroutingChain is the chain, jumped to from POSTROUTING, that masquerades marked packets.
func PostroutingChain(prefix string) string { return prefix + postSuffix }

func (o Options) mark() uint32 {
	if o.MasqMark == 0 {
		return DefaultMasqMark
	}
	return o.MasqMark
}
