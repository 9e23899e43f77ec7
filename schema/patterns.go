package schema

// Patterns of the names and values that the loader checks with regular expressions. Package
// config compiles them for its rules and the JSON Schema carries them, so an editor and
// `ravel config validate` agree. They use only syntax common to Go's regexp and ECMA-262.
const (
	// PatternIfName is a Linux interface name as ravel accepts it (the kernel allows at most
	// 15 bytes; ravel also refuses "." and "..").
	PatternIfName = `^[A-Za-z0-9_.:-]{1,15}$`
	// PatternChain is ravel's iptables chain prefix. iptables allows 28 characters; ravel
	// appends "-SVC-" and a 12-character hash for per-service chains, which leaves 11
	// (MaxChainPrefixLen; then ChainPrefixConflict).
	PatternChain = `^[A-Za-z][A-Za-z0-9_]{0,10}$`
	// PatternTable is ravel's nftables table (rules.table): a letter, then up to 31 letters,
	// digits, '_' or '-' (nft takes longer names; ravel keeps them plain).
	PatternTable = `^[A-Za-z][A-Za-z0-9_-]{0,31}$`
	// PatternK8sName is a Kubernetes namespace, service or port name (an RFC 1123 label).
	PatternK8sName = `^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`
	// PatternSysctlKey is a key of ipvsSysctls: one file name under /proc/sys/net/ipv4/vs,
	// never a path.
	PatternSysctlKey = `^[a-z0-9_]+$`
	// PatternIP is a dotted-quad IPv4 address without leading zeros, or an IPv6 address
	// (hex groups and colons, an embedded IPv4 tail allowed; the loader checks the rest and
	// refuses zones and IPv4-mapped addresses).
	PatternIP = `^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$|^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){1,7}(:[0-9]{1,3}(\.[0-9]{1,3}){3})?$`
	// PatternDuration is a non-negative Go duration: 500ms, 30s, 1m30s, 2h.
	PatternDuration = `^[+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$|^[+-]?0$`
	// PatternHostPort is host:port, the host being empty, a name, an IPv4 address or an IPv6
	// address in brackets. (The loader also checks that the port is at most 65535.)
	PatternHostPort = `^(|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$`
)
