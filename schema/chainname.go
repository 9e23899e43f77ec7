package schema

import (
	"fmt"
	"strings"
)

// The chain prefix (iptables.chain) is checked in two steps: PatternChain for its length and
// characters (the JSON Schema carries it), then ChainPrefixConflict for names that are valid
// but would make ravel take what is not its own. ravel deletes every chain it owns and did not
// render, and it owns the prefix itself and every chain named prefix + "-...".

// MaxChainPrefixLen is the longest prefix PatternChain accepts: iptables allows 28 characters
// in a chain name, and the iptables backend appends "-SVC-" and a 12-character hash for each
// service's chain (netops/iptables/chains.MaxPrefixLen; a test in daemon keeps them equal).
const MaxChainPrefixLen = 11

// foreignChainPrefixes are chain families of other programs in the nat table.
var foreignChainPrefixes = []string{"KUBE", "DOCKER", "cali", "CILIUM", "FLANNEL", "WEAVE", "ISTIO", "LIBVIRT"}

// builtinChainNames are iptables' built-in chains and standard targets, which no user chain
// may be named.
var builtinChainNames = map[string]bool{
	"PREROUTING": true, "INPUT": true, "FORWARD": true, "OUTPUT": true, "POSTROUTING": true,
	"ACCEPT": true, "DROP": true, "RETURN": true, "QUEUE": true,
}

// ChainPrefixConflict reports why prefix, which PatternChain accepts, cannot be ravel's: it is
// a built-in chain or target, or it would own another program's chains (KUBE-*, DOCKER*,
// cali-*, ...) or be owned by them. nil when it is free.
func ChainPrefixConflict(prefix string) error {
	if builtinChainNames[strings.ToUpper(prefix)] {
		return fmt.Errorf("chain name %q is a built-in chain or target", prefix)
	}
	for _, f := range foreignChainPrefixes {
		if strings.HasPrefix(prefix, f) || strings.HasPrefix(f, prefix+"-") {
			return fmt.Errorf("chain name %q would own chains of another program (%s*)", prefix, f)
		}
	}
	return nil
}

// foreignTables are nftables tables of other programs that ravel must never take for its own
// (it deletes its table on stand-down and rewrites it whole on every resync): kube-proxy's,
// iptables-nft's (family ip/ip6, but the names are theirs), firewalld's, the distributions'
// default filter table, Docker's and Cilium's.
var foreignTables = []string{"kube-proxy", "filter", "nat", "mangle", "raw", "security", "firewalld",
	"docker", "docker-bridges", "cilium", "calico", "flannel"}

// TableConflict reports why name, which PatternTable accepts, cannot be ravel's nftables table.
func TableConflict(name string) error {
	for _, f := range foreignTables {
		if strings.EqualFold(name, f) {
			return fmt.Errorf("table %q belongs to another program: ravel deletes and rewrites its own table", name)
		}
	}
	return nil
}
