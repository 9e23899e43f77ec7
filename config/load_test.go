package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/schema"
)

// badFiles lists every finding that Load reports for each testdata/*.bad.yaml: errors first,
// then warnings, each in file order. The whole list is compared, so a missing, extra, moved or
// reworded finding fails.
var badFiles = []struct {
	file string
	want []string
}{
	{"alias-bomb.bad.yaml", []string{
		`testdata/alias-bomb.bad.yaml:10:29: services[49].backends[70].address: the file expands to too many values through aliases and merge keys`,
	}},
	{"backend-port-range.bad.yaml", []string{
		`testdata/backend-port-range.bad.yaml:10:35: services[0].backends[0].port: must be a port in 1..65535, or 0 for the service port, not 65536`,
		`testdata/backend-port-range.bad.yaml:11:35: services[0].backends[1].port: must be a port in 1..65535, or 0 for the service port, not -1`,
	}},
	{"bad-chain-long.bad.yaml", []string{
		`testdata/bad-chain-long.bad.yaml:6:10: iptables.chain: "RAVEL_LOADBALANCER" is not a usable chain name (a letter, then up to 10 letters, digits or '_'; ravel appends suffixes to it)`,
	}},
	{"bad-chain-names.bad.yaml", []string{
		`testdata/bad-chain-names.bad.yaml:6:10: iptables.chain: "RAVEL-LB" is not a usable chain name (a letter, then up to 10 letters, digits or '_'; ravel appends suffixes to it)`,
	}},
	{"bad-colocation.bad.yaml", []string{
		`testdata/bad-colocation.bad.yaml:5:13: colocation: must be one of isolated, colocated, not "shared"`,
	}},
	{"bad-interface-dotdot.bad.yaml", []string{
		`testdata/bad-interface-dotdot.bad.yaml:6:14: node.interface: ".." is not an interface name (1 to 15 letters, digits, '.', '_', ':' or '-')`,
		`testdata/bad-interface-dotdot.bad.yaml:7:17: node.vipInterface: "eth0/1" is not an interface name (1 to 15 letters, digits, '.', '_', ':' or '-')`,
	}},
	{"bad-interface-names.bad.yaml", []string{
		`testdata/bad-interface-names.bad.yaml:6:14: node.interface: "a-very-long-interface-name" is not an interface name (1 to 15 letters, digits, '.', '_', ':' or '-')`,
		`testdata/bad-interface-names.bad.yaml:7:17: node.vipInterface: "ravel 0" is not an interface name (1 to 15 letters, digits, '.', '_', ':' or '-')`,
	}},
	{"bad-ipv4.bad.yaml", []string{
		`testdata/bad-ipv4.bad.yaml:4:26: vipPool[1]: "10.0.0.256" is not an IP address: IPv4 field has value >255`,
		`testdata/bad-ipv4.bad.yaml:4:38: vipPool[2]: "010.54.213.1" is not an IP address: IPv4 field has octet with leading zero`,
		`testdata/bad-ipv4.bad.yaml:4:52: vipPool[3]: "10.54.213" is not an IP address: IPv4 address too short`,
		`testdata/bad-ipv4.bad.yaml:6:12: node.gateway: "router.example.com" is not an IP address (host names are not resolved)`,
		`testdata/bad-ipv4.bad.yaml:12:19: services[0].backends[0].address: "10.0.1.5/32" is not an IP address: write the address alone, without a prefix length`,
		`testdata/bad-ipv4.bad.yaml:13:19: services[0].backends[1].address: "10.0.1.6 " is not an IP address: unexpected character (at " ")`,
	}},
	{"bad-metrics-listen.bad.yaml", []string{
		`testdata/bad-metrics-listen.bad.yaml:6:11: metrics.listen: "127.0.0.1" is not host:port with a port in 0..65535 (like 127.0.0.1:10234 or :10234)`,
	}},
	{"bad-metrics-port.bad.yaml", []string{
		`testdata/bad-metrics-port.bad.yaml:6:11: metrics.listen: ":70000" is not host:port with a port in 0..65535 (like 127.0.0.1:10234 or :10234)`,
	}},
	{"bad-protocol.bad.yaml", []string{
		`testdata/bad-protocol.bad.yaml:6:15: defaults.protocols[0]: must be one of tcp, udp, not "icmp"`,
		`testdata/bad-protocol.bad.yaml:11:22: services[0].protocols[1]: must be one of tcp, udp, not "sctp"`,
	}},
	{"bad-role.bad.yaml", []string{
		`testdata/bad-role.bad.yaml:6:9: node.role: must be one of director, realserver, bgp, not "loadbalancer"`,
	}},
	{"both-kubernetes-and-backends.bad.yaml", []string{
		`testdata/both-kubernetes-and-backends.bad.yaml:7:5: services[0]: set exactly one of kubernetes and backends, not both`,
	}},
	{"comments-only.bad.yaml", []string{
		`testdata/comments-only.bad.yaml:1:1: the file is empty`,
	}},
	{"coordinator-listen.bad.yaml", []string{
		`testdata/coordinator-listen.bad.yaml:6:11: coordinator.listen: "localhost" is not an IP address (host names are not resolved)`,
	}},
	{"coordinator-port-duplicate.bad.yaml", []string{
		`testdata/coordinator-port-duplicate.bad.yaml:6:25: coordinator.ports[2]: port 44444 is already listed as coordinator.ports[0]`,
	}},
	{"coordinator-port-range.bad.yaml", []string{
		`testdata/coordinator-port-range.bad.yaml:6:11: coordinator.ports[0]: must be a port in 1..65535, not 0`,
		`testdata/coordinator-port-range.bad.yaml:6:21: coordinator.ports[2]: must be a port in 1..65535, not 65536`,
	}},
	{"coordinator-ports-empty.bad.yaml", []string{
		`testdata/coordinator-ports-empty.bad.yaml:6:10: coordinator.ports: must not be empty`,
	}},
	{"duplicate-backend.bad.yaml", []string{
		`testdata/duplicate-backend.bad.yaml:11:9: services[0].backends[1]: backend 10.0.1.5:80 is already listed as backends[0]`,
	}},
	{"duplicate-keys.bad.yaml", []string{
		`testdata/duplicate-keys.bad.yaml:10:5: services[0].port: duplicate key (first written on line 9)`,
		`testdata/duplicate-keys.bad.yaml:12:1: resync: duplicate key (first written on line 5)`,
	}},
	{"duplicate-protocol.bad.yaml", []string{
		`testdata/duplicate-protocol.bad.yaml:9:27: services[0].protocols[2]: protocol tcp is listed twice`,
	}},
	{"duplicate-service-name.bad.yaml", []string{
		`testdata/duplicate-service-name.bad.yaml:10:11: services[1].name: name "web" is already used by services[0]`,
	}},
	{"duplicate-via-default-protocols.bad.yaml", []string{
		`testdata/duplicate-via-default-protocols.bad.yaml:12:5: services[1]: tcp 10.54.213.247:53 is already served by services[0]`,
	}},
	{"duplicate-vip-port-protocol.bad.yaml", []string{
		`testdata/duplicate-vip-port-protocol.bad.yaml:11:5: services[1]: udp 10.54.213.247:80 is already served by services[0]`,
	}},
	{"duplicate-vippool.bad.yaml", []string{
		`testdata/duplicate-vippool.bad.yaml:7:5: vipPool[2]: 10.54.213.247 is already listed as vipPool[0]`,
	}},
	{"duration-negative.bad.yaml", []string{
		`testdata/duration-negative.bad.yaml:5:9: resync: duration -60s must not be negative`,
		`testdata/duration-negative.bad.yaml:7:17: defaults.drainTimeout: duration -1m must not be negative`,
		`testdata/duration-negative.bad.yaml:8:32: coordinator.failoverTimeout: duration -500ms must not be negative`,
	}},
	{"duration-unparseable.bad.yaml", []string{
		`testdata/duration-unparseable.bad.yaml:5:9: resync: "1 minute" is not a duration (write it like 500ms, 30s or 1m30s)`,
		`testdata/duration-unparseable.bad.yaml:7:13: arp.interval: "5x" is not a duration (write it like 500ms, 30s or 1m30s)`,
		`testdata/duration-unparseable.bad.yaml:9:21: kubernetes.debounce.quiet: "" is not a duration (write it like 500ms, 30s or 1m30s)`,
		`testdata/duration-unparseable.bad.yaml:9:35: kubernetes.debounce.maxDelay: must be a duration with a unit, like 1.5s, not the number 1.5`,
	}},
	{"empty-backends.bad.yaml", []string{
		`testdata/empty-backends.bad.yaml:9:15: services[0].backends: must list at least one backend`,
	}},
	{"empty-protocols.bad.yaml", []string{
		`testdata/empty-protocols.bad.yaml:6:14: defaults.protocols: must not be empty`,
		`testdata/empty-protocols.bad.yaml:11:16: services[0].protocols: must not be empty`,
	}},
	{"empty.bad.yaml", []string{
		`testdata/empty.bad.yaml:1:1: the file is empty`,
	}},
	{"integer-out-of-range.bad.yaml", []string{
		`testdata/integer-out-of-range.bad.yaml:6:9: management.port: integer 4294967296 is out of range`,
		`testdata/integer-out-of-range.bad.yaml:8:11: coordinator.ports[0]: integer 99999999999999999999 is out of range`,
	}},
	{"ipv6.bad.yaml", []string{
		`testdata/ipv6.bad.yaml:6:11: vipPool[0]: 10.54.213.247 is IPv4, and bgp.peers has no IPv4 peer to announce it to (each VIP goes to the peers of its family)`,
		`testdata/ipv6.bad.yaml:6:41: vipPool[2]: "fe80::1%eth0" has a zone index (%eth0): write the address without it; ravel's addresses are routed, not link-local`,
		`testdata/ipv6.bad.yaml:12:13: bgp.routerId: 2001:db8::99 is IPv6, and a BGP identifier is 32 bits: write an IPv4 address, or leave it out for node.interface's`,
		`testdata/ipv6.bad.yaml:19:19: services[0].backends[0].address: 10.0.1.5 is IPv4, but the service's vip 2001:db8::1 is IPv6: a service and its destinations share one address family`,
		`testdata/ipv6.bad.yaml:20:19: services[0].backends[1].address: "::ffff:10.0.1.5" is an IPv4-mapped IPv6 address: write the IPv4 address 10.0.1.5`,
		`testdata/ipv6.bad.yaml:27:28: services[1].sorryServer.address: 10.0.9.9 is IPv4, but the service's vip 2001:db8::1 is IPv6: a service and its destinations share one address family`,
		`testdata/ipv6.bad.yaml:28:5: services[2]: tcp [2001:db8::1]:80 is already served by services[0]`,
		`testdata/ipv6.bad.yaml:27:18: warning: services[1].sorryServer: no health check (healthCheck.type none): the sorry server is never used`,
	}},
	{"kubernetes-target-fields.bad.yaml", []string{
		`testdata/kubernetes-target-fields.bad.yaml:10:17: services[0].kubernetes.namespace: is required`,
		`testdata/kubernetes-target-fields.bad.yaml:14:29: services[1].kubernetes.namespace: is required`,
		`testdata/kubernetes-target-fields.bad.yaml:14:42: services[1].kubernetes.service: "API_Server" is not a Kubernetes name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)`,
		`testdata/kubernetes-target-fields.bad.yaml:14:64: services[1].kubernetes.portName: "-http" is not a Kubernetes name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)`,
	}},
	{"kubernetes-target-without-section.bad.yaml", []string{
		`testdata/kubernetes-target-without-section.bad.yaml:9:17: services[0].kubernetes: targets a Kubernetes service, but the file has no top-level kubernetes section`,
	}},
	{"bad-management-port.bad.yaml", []string{
		`testdata/bad-management-port.bad.yaml:8:13: management.protocol: protocol udp needs management.kubernetes: without it the port is answered over HTTP (tcp)`,
		`testdata/bad-management-port.bad.yaml:11:5: services[1]: udp 10.0.0.2:8080 is the management service's (management.port on every vipPool address)`,
	}},
	{"bad-bgp.bad.yaml", []string{
		`testdata/bad-bgp.bad.yaml:8:8: bgp.asn: must be at most 4294967294, not 4294967295`,
		`testdata/bad-bgp.bad.yaml:9:15: bgp.listenPort: 0 is not a port: -1 accepts no session, 1..65535 listens there`,
		`testdata/bad-bgp.bad.yaml:10:17: bgp.communities[0]: "65010:70000" is not a community ASN:VALUE (each 0..65535)`,
		`testdata/bad-bgp.bad.yaml:10:32: bgp.communities[1]: "nope" is not a community ASN:VALUE (each 0..65535)`,
		`testdata/bad-bgp.bad.yaml:11:22: bgp.largeCommunities[0]: "1:2" is not a large community GLOBAL:LOCAL1:LOCAL2 (each 0..4294967295)`,
		`testdata/bad-bgp.bad.yaml:13:49: bgp.peers[0].holdTime: must be 0 (no keepalives) or 3s..65535s, not 2s`,
		`testdata/bad-bgp.bad.yaml:14:17: bgp.peers[1].address: peer 10.0.0.1 is already bgp.peers[0]`,
		`testdata/bad-bgp.bad.yaml:14:68: bgp.peers[1].keepaliveTime: keepaliveTime 9s must be above 0 and below holdTime 9s`,
		`testdata/bad-bgp.bad.yaml:15:32: bgp.peers[2].asn: must be at least 1, not 0`,
		`testdata/bad-bgp.bad.yaml:15:45: bgp.peers[2].password: is 91 characters; TCP MD5 keys are at most 80`,
		`testdata/bad-bgp.bad.yaml:16:85: bgp.peers[3].gracefulRestart.restartTime: must be 1s..4095s (12 bits of seconds in the capability), not 1h23m20s`,
		`testdata/bad-bgp.bad.yaml:16:126: bgp.peers[3].bfd.multiplier: must be at least 1, not 0`,
	}},
	{"bad-health-check.bad.yaml", []string{
		`testdata/bad-health-check.bad.yaml:5:33: health.timeout: timeout 1s must be shorter than interval 1s`,
		`testdata/bad-health-check.bad.yaml:5:43: health.rise: must be at least 1, not 0`,
		`testdata/bad-health-check.bad.yaml:7:23: defaults.healthCheck.type: must be one of tcp, http, none, not "ping"`,
		`testdata/bad-health-check.bad.yaml:7:35: defaults.healthCheck.path: "healthz" must start with '/'`,
		`testdata/bad-health-check.bad.yaml:13:37: services[0].healthCheck.port: must be a port in 1..65535 (leave it out to check the backend's port)`,
		`testdata/bad-health-check.bad.yaml:13:46: services[0].healthCheck.rise: must be at least 1`,
		`testdata/bad-health-check.bad.yaml:13:59: services[0].healthCheck.interval: timeout 1s must be shorter than interval 500ms (timeout inherited from defaults.healthCheck)`,
		`testdata/bad-health-check.bad.yaml:18:39: services[1].healthCheck.timeout: timeout 3s must be shorter than interval 2s (interval inherited from defaults.healthCheck)`,
		`testdata/bad-health-check.bad.yaml:18:57: services[1].healthCheck.expectStatus: must be at least 100, not 42`,
		`testdata/bad-health-check.bad.yaml:19:28: services[1].sorryServer.address: 127.0.0.1 is a loopback address: it cannot be a backend`,
		`testdata/bad-health-check.bad.yaml:19:45: services[1].sorryServer.port: port 82 differs from the service port 81, and forwarding dr cannot rewrite ports (only nat can)`,
	}},
	{"bad-rules.bad.yaml", []string{
		`testdata/bad-rules.bad.yaml:7:12: rules.backend: must be one of iptables, nftables, auto, not "nft"`,
		`testdata/bad-rules.bad.yaml:8:10: rules.table: table "kube-proxy" belongs to another program: ravel deletes and rewrites its own table`,
	}},
	{"bad-rules-table.bad.yaml", []string{
		`testdata/bad-rules-table.bad.yaml:5:16: rules.table: "9bad name" is not a usable nftables table name (a letter, then up to 31 letters, digits, '_' or '-')`,
	}},
	{"bad-chain-foreign.bad.yaml", []string{
		`testdata/bad-chain-foreign.bad.yaml:6:10: iptables.chain: chain name "KUBE" would own chains of another program (KUBE*)`,
	}},
	{"management-port-range.bad.yaml", []string{
		`testdata/management-port-range.bad.yaml:6:9: management.port: must be a port in 1..65535, or 0 for off, not 65536`,
	}},
	{"many-errors.bad.yaml", []string{
		`testdata/many-errors.bad.yaml:5:9: node.role: must be one of director, realserver, bgp, not "directer"`,
		`testdata/many-errors.bad.yaml:7:26: vipPool[1]: "10.54.213.300" is not an IP address: IPv4 field has value >255`,
		`testdata/many-errors.bad.yaml:10:62: defaults.ipvs.lowerThreshold: lowerThreshold 20 must be below upperThreshold 10 (when lowerThreshold is set, upperThreshold > lowerThreshold > 0)`,
		`testdata/many-errors.bad.yaml:13:10: services[0].vip: 10.54.213.248 is not in vipPool`,
		`testdata/many-errors.bad.yaml:16:37: services[0].backends[0].weight: must be a weight in 0..65535, not 100000`,
		`testdata/many-errors.bad.yaml:17:5: services[1]: set exactly one of kubernetes and backends`,
		`testdata/many-errors.bad.yaml:17:11: services[1].name: name "web" is already used by services[0]`,
		`testdata/many-errors.bad.yaml:19:11: services[1].port: must be a port in 1..65535, not 70000`,
		`testdata/many-errors.bad.yaml:20:5: services[2]: set exactly one of kubernetes and backends, not both`,
		`testdata/many-errors.bad.yaml:25:13: colocation: must be one of isolated, colocated, not "both"`,
		`testdata/many-errors.bad.yaml:26:15: ipvsSysctls["../x"]: "../x" is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)`,
		`testdata/many-errors.bad.yaml:27:30: coordinator.ports[1]: port 44444 is already listed as coordinator.ports[0]`,
		`testdata/many-errors.bad.yaml:27:55: coordinator.failoverTimeout: "soon" is not a duration (write it like 500ms, 30s or 1m30s)`,
		`testdata/many-errors.bad.yaml:28:9: resync: must be a duration with a unit, like 0.5s, not the number 0.5`,
	}},
	{"merge-cycle.bad.yaml", []string{
		`testdata/merge-cycle.bad.yaml:7:7: node: a merge key (<<) merges a mapping into itself`,
	}},
	{"merge-key-twice.bad.yaml", []string{
		`testdata/merge-key-twice.bad.yaml:7:3: node["<<"]: duplicate key (first written on line 6); merge several mappings with <<: [*a, *b]`,
	}},
	{"merge-key-not-mapping.bad.yaml", []string{
		`testdata/merge-key-not-mapping.bad.yaml:6:7: node: a merge key (<<) takes a mapping or a list of mappings, not "director"`,
		`testdata/merge-key-not-mapping.bad.yaml:8:26: kubernetes: a merge key (<<) takes a mapping or a list of mappings, not a list of the integer 5`,
	}},
	{"missing-apiversion.bad.yaml", []string{
		`testdata/missing-apiversion.bad.yaml:2:1: apiVersion: is required (apiVersion: ravel/v1)`,
		`testdata/missing-apiversion.bad.yaml:2:1: kind: is required (kind: ClusterConfig)`,
	}},
	{"missing-required.bad.yaml", []string{
		`testdata/missing-required.bad.yaml:6:5: services[0].port: is required`,
		`testdata/missing-required.bad.yaml:6:5: services[0].vip: is required`,
		`testdata/missing-required.bad.yaml:8:9: services[0].backends[0].address: is required`,
	}},
	{"nat-kubernetes.bad.yaml", []string{
		`testdata/nat-kubernetes.bad.yaml:10:5: services[0]: forwarding nat (inherited from defaults.ipvs.forwarding) cannot serve a kubernetes target: destinations are node:port, the realservers' DNAT rules match only the VIP, and pods would answer clients directly, around the director; use dr or tunnel`,
		`testdata/nat-kubernetes.bad.yaml:18:24: services[1].ipvs.forwarding: forwarding nat cannot serve a kubernetes target: destinations are node:port, the realservers' DNAT rules match only the VIP, and pods would answer clients directly, around the director; use dr or tunnel`,
	}},
	{"neither-kubernetes-nor-backends.bad.yaml", []string{
		`testdata/neither-kubernetes-nor-backends.bad.yaml:6:5: services[0]: set exactly one of kubernetes and backends`,
	}},
	{"non-string-keys.bad.yaml", []string{
		`testdata/non-string-keys.bad.yaml:6:3: node: keys must be plain strings, not a list`,
		`testdata/non-string-keys.bad.yaml:7:3: node: keys must be plain strings, not a mapping`,
	}},
	{"not-a-mapping-list.bad.yaml", []string{
		`testdata/not-a-mapping-list.bad.yaml:2:1: the file must be a mapping of keys (apiVersion, kind, ...), not a list`,
	}},
	{"not-a-mapping-scalar.bad.yaml", []string{
		`testdata/not-a-mapping-scalar.bad.yaml:2:1: the file must be a mapping of keys (apiVersion, kind, ...), not "ravel/v1 ClusterConfig"`,
	}},
	{"null-address.bad.yaml", []string{
		`testdata/null-address.bad.yaml:4:26: vipPool[1]: must be an IP address, not null`,
		`testdata/null-address.bad.yaml:7:9: services[0].vip: must be an IP address, not null`,
		`testdata/null-address.bad.yaml:10:19: services[0].backends[0].address: must be an IP address, not null`,
	}},
	{"role-bgp.bad.yaml", []string{
		`testdata/role-bgp.bad.yaml:6:9: node.role: role bgp needs a bgp section (asn and peers)`,
	}},
	{"second-document.bad.yaml", []string{
		`testdata/second-document.bad.yaml:5:1: a second YAML document; a ClusterConfig file holds exactly one`,
	}},
	{"service-port-range.bad.yaml", []string{
		`testdata/service-port-range.bad.yaml:8:11: services[0].port: must be a port in 1..65535, not 0`,
		`testdata/service-port-range.bad.yaml:12:11: services[1].port: must be a port in 1..65535, not 65536`,
		`testdata/service-port-range.bad.yaml:16:11: services[2].port: must be a port in 1..65535, not -80`,
	}},
	{"syntax-bad-anchor.bad.yaml", []string{
		`testdata/syntax-bad-anchor.bad.yaml:6:9: YAML syntax: unknown anchor 'nowhere' referenced`,
	}},
	{"syntax-colon-in-value.bad.yaml", []string{
		`testdata/syntax-colon-in-value.bad.yaml:6:17: YAML syntax: mapping values are not allowed in this context (check the indentation of this line, or quote a value that contains ": ")`,
	}},
	{"syntax-indent.bad.yaml", []string{
		`testdata/syntax-indent.bad.yaml:8:10: YAML syntax: mapping values are not allowed in this context (check the indentation of this line, or quote a value that contains ": ")`,
	}},
	{"syntax-tab.bad.yaml", []string{
		`testdata/syntax-tab.bad.yaml:6:1: YAML syntax: found character that cannot start any token (a tab: YAML is indented with spaces)`,
	}},
	{"syntax-unclosed-flow.bad.yaml", []string{
		`testdata/syntax-unclosed-flow.bad.yaml:9:34: YAML syntax: did not find expected ',' or ']'`,
	}},
	{"syntax-unterminated-quote.bad.yaml", []string{
		`testdata/syntax-unterminated-quote.bad.yaml:6:9: YAML syntax: found unexpected end of stream (the quoted string that starts here is never closed)`,
	}},
	{"sysctl-dotdot.bad.yaml", []string{
		`testdata/sysctl-dotdot.bad.yaml:6:3: ipvsSysctls[".."]: ".." is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)`,
		`testdata/sysctl-dotdot.bad.yaml:7:3: ipvsSysctls["net.ipv4.vs.conntrack"]: "net.ipv4.vs.conntrack" is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)`,
	}},
	{"sysctl-slash.bad.yaml", []string{
		`testdata/sysctl-slash.bad.yaml:7:3: ipvsSysctls["../../ipv4/ip_forward"]: "../../ipv4/ip_forward" is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)`,
		`testdata/sysctl-slash.bad.yaml:8:3: ipvsSysctls["/proc/sys/kernel/panic"]: "/proc/sys/kernel/panic" is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)`,
	}},
	{"sysctl-space.bad.yaml", []string{
		`testdata/sysctl-space.bad.yaml:6:3: ipvsSysctls["sloppy_tcp "]: "sloppy_tcp " is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)`,
		`testdata/sysctl-space.bad.yaml:7:3: ipvsSysctls["expire nodest conn"]: "expire nodest conn" is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)`,
	}},
	{"sysctl-uppercase.bad.yaml", []string{
		`testdata/sysctl-uppercase.bad.yaml:6:3: ipvsSysctls.Conntrack: "Conntrack" is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)`,
		`testdata/sysctl-uppercase.bad.yaml:7:3: ipvsSysctls.SLOPPY_TCP: "SLOPPY_TCP" is not a plain sysctl name under net.ipv4.vs (lowercase letters, digits and '_' only)`,
	}},
	{"sysctl-wrong-value.bad.yaml", []string{
		`testdata/sysctl-wrong-value.bad.yaml:6:14: ipvsSysctls.conntrack: must be an integer, not "on"`,
		`testdata/sysctl-wrong-value.bad.yaml:7:19: ipvsSysctls.sync_threshold: must be an integer, not "3 50"`,
	}},
	{"thresholds-inherited.bad.yaml", []string{
		`testdata/thresholds-inherited.bad.yaml:12:28: services[0].ipvs.upperThreshold: upperThreshold 20000 must be above lowerThreshold 25000 inherited from defaults.ipvs (when lowerThreshold is set, upperThreshold > lowerThreshold > 0)`,
		`testdata/thresholds-inherited.bad.yaml:17:28: services[1].ipvs.lowerThreshold: lowerThreshold 60000 must be below upperThreshold 50000 inherited from defaults.ipvs (when lowerThreshold is set, upperThreshold > lowerThreshold > 0)`,
	}},
	{"thresholds-lower-without-upper.bad.yaml", []string{
		`testdata/thresholds-lower-without-upper.bad.yaml:6:26: defaults.ipvs.lowerThreshold: lowerThreshold 10 needs an upperThreshold above it (upperThreshold 0 means no limit; when lowerThreshold is set, upperThreshold > lowerThreshold > 0)`,
	}},
	{"thresholds-negative.bad.yaml", []string{
		`testdata/thresholds-negative.bad.yaml:6:26: defaults.ipvs.upperThreshold: must not be negative, not -1`,
		`testdata/thresholds-negative.bad.yaml:12:49: services[0].ipvs.lowerThreshold: must not be negative, not -5`,
	}},
	{"thresholds-order.bad.yaml", []string{
		`testdata/thresholds-order.bad.yaml:6:47: defaults.ipvs.lowerThreshold: lowerThreshold 100 must be below upperThreshold 100 (when lowerThreshold is set, upperThreshold > lowerThreshold > 0)`,
		`testdata/thresholds-order.bad.yaml:12:50: services[0].ipvs.lowerThreshold: lowerThreshold 5000 must be below upperThreshold 1000 (when lowerThreshold is set, upperThreshold > lowerThreshold > 0)`,
	}},
	{"unknown-keys.bad.yaml", []string{
		`testdata/unknown-keys.bad.yaml:5:1: service: unknown key "service" (did you mean "services"?)`,
		`testdata/unknown-keys.bad.yaml:7:3: node.roles: unknown key "roles" (did you mean "role"?)`,
		`testdata/unknown-keys.bad.yaml:9:14: kubernetes.debounce.quite: unknown key "quite" (did you mean "quiet"?)`,
		`testdata/unknown-keys.bad.yaml:11:10: defaults.ipvs.schedular: unknown key "schedular" (did you mean "scheduler"?)`,
		`testdata/unknown-keys.bad.yaml:17:29: services[0].backends[0].wieght: unknown key "wieght" (did you mean "weight"?)`,
		`testdata/unknown-keys.bad.yaml:18:5: services[0].healthChecks: unknown key "healthChecks" (did you mean "healthCheck"?)`,
		`testdata/unknown-keys.bad.yaml:19:38: metrics.path: unknown key "path"`,
	}},
	{"unsafe-address.bad.yaml", []string{
		`testdata/unsafe-address.bad.yaml:7:26: vipPool[1]: 127.0.0.5 is a loopback address: it cannot be a VIP`,
		`testdata/unsafe-address.bad.yaml:7:37: vipPool[2]: 169.254.169.254 is a link-local address: it cannot be a VIP`,
		`testdata/unsafe-address.bad.yaml:7:54: vipPool[3]: 10.54.213.1 is node.gateway: it cannot be a VIP`,
		`testdata/unsafe-address.bad.yaml:12:10: services[0].vip: 127.0.0.5 is a loopback address: it cannot be a VIP`,
		`testdata/unsafe-address.bad.yaml:14:26: services[0].backends[0].address: 127.0.0.1 is a loopback address: it cannot be a backend`,
		`testdata/unsafe-address.bad.yaml:14:48: services[0].backends[1].address: 169.254.1.1 is a link-local address: it cannot be a backend`,
		`testdata/unsafe-address.bad.yaml:18:42: services[1].backends[0].port: port 8080 differs from the service port 80, and forwarding tunnel (inherited from defaults.ipvs.forwarding) cannot rewrite ports (only nat can)`,
		`testdata/unsafe-address.bad.yaml:22:42: services[2].backends[0].port: port 8443 differs from the service port 443, and forwarding dr cannot rewrite ports (only nat can)`,
	}},
	{"unsupported-apiversion.bad.yaml", []string{
		`testdata/unsupported-apiversion.bad.yaml:2:13: apiVersion: unsupported apiVersion "ravel/v2" (this ravel reads "ravel/v1")`,
		`testdata/unsupported-apiversion.bad.yaml:3:7: kind: unsupported kind "ClusterConfiguration" (this ravel reads "ClusterConfig")`,
	}},
	{"unusable-address.bad.yaml", []string{
		`testdata/unusable-address.bad.yaml:4:26: vipPool[1]: 0.0.0.0 cannot be used here (unspecified, multicast or broadcast)`,
		`testdata/unusable-address.bad.yaml:4:35: vipPool[2]: 239.1.1.1 cannot be used here (unspecified, multicast or broadcast)`,
		`testdata/unusable-address.bad.yaml:4:46: vipPool[3]: 255.255.255.255 cannot be used here (unspecified, multicast or broadcast)`,
	}},
	{"vip-outside-pool.bad.yaml", []string{
		`testdata/vip-outside-pool.bad.yaml:7:10: services[0].vip: 10.54.213.249 is not in vipPool`,
	}},
	{"vipinterface-is-interface.bad.yaml", []string{
		`testdata/vipinterface-is-interface.bad.yaml:7:17: node.vipInterface: must differ from node.interface (eth0): ravel creates and owns the vipInterface`,
	}},
	{"weight-range.bad.yaml", []string{
		`testdata/weight-range.bad.yaml:10:37: services[0].backends[0].weight: must be a weight in 0..65535, not 65536`,
		`testdata/weight-range.bad.yaml:11:37: services[0].backends[1].weight: must be a weight in 0..65535, not -1`,
	}},
	{"wrong-type-address.bad.yaml", []string{
		`testdata/wrong-type-address.bad.yaml:6:12: node.gateway: must be an IP address, not true`,
		`testdata/wrong-type-address.bad.yaml:9:10: services[0].vip: must be an IP address, not the integer 3232235777`,
		`testdata/wrong-type-address.bad.yaml:12:18: services[0].backends[0].address: must be an IP address, not a list`,
	}},
	{"wrong-type-bool.bad.yaml", []string{
		`testdata/wrong-type-bool.bad.yaml:6:20: kubernetes.includeCordoned: must be true or false, not "yes"`,
		`testdata/wrong-type-bool.bad.yaml:7:22: kubernetes.keepLastEndpoints: must be true or false, not the integer 1`,
		`testdata/wrong-type-bool.bad.yaml:9:15: iptables.masquerade: must be true or false, not "false"`,
	}},
	{"wrong-type-duration.bad.yaml", []string{
		`testdata/wrong-type-duration.bad.yaml:5:9: resync: must be a duration with a unit, like 60s, not the integer 60`,
		`testdata/wrong-type-duration.bad.yaml:7:17: defaults.drainTimeout: must be a duration like 30s, not a list`,
		`testdata/wrong-type-duration.bad.yaml:9:20: coordinator.failoverTimeout: must be a duration like 30s, not a mapping`,
	}},
	{"wrong-type-int.bad.yaml", []string{
		`testdata/wrong-type-int.bad.yaml:8:11: services[0].port: must be an integer, not "80"`,
		`testdata/wrong-type-int.bad.yaml:10:37: services[0].backends[0].weight: must be an integer, not the number 1.5`,
		`testdata/wrong-type-int.bad.yaml:11:35: services[0].backends[1].port: must be an integer, not "http"`,
		`testdata/wrong-type-int.bad.yaml:12:20: management.port: must be an integer, not true`,
	}},
	{"wrong-type-list.bad.yaml", []string{
		`testdata/wrong-type-list.bad.yaml:4:10: vipPool: must be a list, not "10.54.213.247"`,
		`testdata/wrong-type-list.bad.yaml:6:14: defaults.protocols: must be a list, not "tcp"`,
		`testdata/wrong-type-list.bad.yaml:8:10: coordinator.ports: must be a list, not a mapping`,
		`testdata/wrong-type-list.bad.yaml:10:3: services: must be a list, not a mapping`,
	}},
	{"wrong-type-mapping.bad.yaml", []string{
		`testdata/wrong-type-mapping.bad.yaml:5:7: node: must be a mapping, not "director"`,
		`testdata/wrong-type-mapping.bad.yaml:7:17: kubernetes.nodeSelector: must be a mapping, not a list`,
		`testdata/wrong-type-mapping.bad.yaml:8:14: ipvsSysctls: must be a mapping, not "conntrack=1"`,
		`testdata/wrong-type-mapping.bad.yaml:13:16: services[0].backends[0]: must be a mapping, not "10.0.1.5"`,
		`testdata/wrong-type-mapping.bad.yaml:14:11: services[0].ipvs: must be a mapping, not "wrr"`,
	}},
	{"wrong-type-string.bad.yaml", []string{
		`testdata/wrong-type-string.bad.yaml:6:9: node.name: must be a string, not a list`,
		`testdata/wrong-type-string.bad.yaml:7:14: node.interface: must be a string, not a mapping`,
		`testdata/wrong-type-string.bad.yaml:9:10: iptables.chain: must be a string, not a list`,
	}},
}

func TestBadFiles(t *testing.T) {
	for _, tc := range badFiles {
		t.Run(strings.TrimSuffix(tc.file, ".bad.yaml"), func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", tc.file))
			if err == nil {
				t.Fatalf("Load succeeded (warnings %v); want errors", c.Warnings)
			}
			var e *Errors
			if !errors.As(err, &e) {
				t.Fatalf("Load returned %T %v; want *Errors", err, err)
			}
			got := append(lines(e.Errors), lines(e.Warnings)...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if e.Error() != strings.Join(lines(e.Errors), "\n") {
				t.Errorf("Error() = %q; want the errors one per line", e.Error())
			}
		})
	}
}

func lines(fs Findings) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}

// goodFiles lists, for each testdata/*.good.yaml, the exact warnings and a check of the
// effective values after defaults and normalization.
var goodFiles = []struct {
	file     string
	warnings []string
	check    func(t *testing.T, c *Config)
}{
	{"minimal.good.yaml", nil, func(t *testing.T, c *Config) {
		diffConfig(t, schema.Default(), c.ClusterConfig)
	}},
	{"document-markers.good.yaml", nil, func(t *testing.T, c *Config) {
		diffConfig(t, schema.Default(), c.ClusterConfig)
	}},
	{"every-key.good.yaml", nil, func(t *testing.T, c *Config) {
		diffConfig(t, everyKey(), c.ClusterConfig)
	}},
	{"empty-values.good.yaml", nil, func(t *testing.T, c *Config) {
		want := schema.Default()
		k := schema.DefaultKubernetes()
		want.Kubernetes = &k
		want.VIPPool = addrs("10.54.213.247")
		inherited := want.Defaults.IPVS
		want.Services = []schema.Service{{
			Name: "web", VIP: addr("10.54.213.247"), Port: 80, Protocols: []string{"tcp"},
			Kubernetes: &schema.KubeTarget{Namespace: "web", Service: "nginx"},
			IPVS:       &inherited,
		}}
		diffConfig(t, want, c.ClusterConfig)
	}},
	{"anchors-merge.good.yaml", nil, func(t *testing.T, c *Config) {
		diff(t, []string{
			"web 10.54.213.247:80 tcp [10.0.1.5:80/2 10.0.1.6:80/1] wrr tunnel [] 100/50",
			"web-tls 10.54.213.247:443 tcp [10.0.1.5:443/2 10.0.1.6:443/1] wrr tunnel [] 100/50",
			"api 10.54.213.247:8080 tcp [10.0.1.5:8080/2 10.0.1.6:8080/1] wrr tunnel [] 100/10",
		}, services(c))
	}},
	{"merge-layers.good.yaml", nil, func(t *testing.T, c *Config) {
		diff(t, map[string]string{"a": "b"}, c.Kubernetes.NodeSelector)
	}},
	{"warnings-normalize.good.yaml", []string{
		`testdata/warnings-normalize.good.yaml:7:21: warning: defaults.ipvs.scheduler: unknown scheduler "roundrobin", using wrr`,
		`testdata/warnings-normalize.good.yaml:7:45: warning: defaults.ipvs.forwarding: unknown forwarding method "direct", using dr`,
		`testdata/warnings-normalize.good.yaml:17:23: warning: services[1].ipvs.scheduler: unknown scheduler "XYZ", using wrr`,
		`testdata/warnings-normalize.good.yaml:17:40: warning: services[1].ipvs.forwarding: unknown forwarding method "masq", using dr`,
	}, func(t *testing.T, c *Config) {
		diff(t, "wrr dr", c.Defaults.IPVS.Scheduler+" "+c.Defaults.IPVS.Forwarding)
		diff(t, []string{
			"inherits 10.54.213.247:80 tcp [10.0.1.5:80/1] wrr dr [] 0/0",
			"own 10.54.213.247:443 tcp [10.0.1.5:443/1] wrr dr [] 0/0",
			"valid 10.54.213.247:8080 tcp [10.0.1.5:8080/1] lc nat [] 0/0",
		}, services(c))
	}},
	{"warnings-flags.good.yaml", []string{
		`testdata/warnings-flags.good.yaml:9:13: warning: defaults.ipvs.flags[0]: flag "sh-port" belongs to scheduler sh, not wrr: dropped`,
		`testdata/warnings-flags.good.yaml:17:24: warning: services[0].ipvs.flags[1]: flag "sh-fallback" belongs to scheduler sh, not mh: dropped`,
		`testdata/warnings-flags.good.yaml:17:37: warning: services[0].ipvs.flags[2]: unknown flag "persistent" dropped`,
		`testdata/warnings-flags.good.yaml:17:49: warning: services[0].ipvs.flags[3]: flag "mh-port" is listed twice: dropped`,
		`testdata/warnings-flags.good.yaml:22:20: warning: services[1].ipvs.flags[0]: flag "mh-port" belongs to scheduler mh, not wrr: dropped`,
	}, func(t *testing.T, c *Config) {
		diff(t, []string{}, c.Defaults.IPVS.Flags)
		diff(t, []string{
			"mh 10.54.213.247:80 tcp [10.0.1.5:80/1] mh dr [mh-port mh-fallback] 0/0",
			"flags-only 10.54.213.247:443 tcp [10.0.1.5:443/1] wrr dr [] 0/0",
		}, services(c))
	}},
	{"warnings-inherited-flags.good.yaml", []string{
		`testdata/warnings-inherited-flags.good.yaml:18:23: warning: services[1].ipvs.scheduler: inherited flag "mh-port" does not belong to scheduler sh: dropped for this service`,
		`testdata/warnings-inherited-flags.good.yaml:18:23: warning: services[1].ipvs.scheduler: inherited flag "mh-fallback" does not belong to scheduler sh: dropped for this service`,
	}, func(t *testing.T, c *Config) {
		diff(t, []string{"mh-port", "mh-fallback"}, c.Defaults.IPVS.Flags)
		diff(t, []string{
			"keeps 10.54.213.247:80 tcp [10.0.1.5:80/1] mh dr [mh-port mh-fallback] 0/0",
			"sh 10.54.213.247:443 tcp [10.0.1.5:443/1] sh dr [] 0/0",
			"own-flags 10.54.213.247:8080 tcp [10.0.1.5:8080/1] sh dr [sh-port] 0/0",
		}, services(c))
	}},
	{"warnings-case.good.yaml", []string{
		`testdata/warnings-case.good.yaml:16:61: warning: services[0].ipvs.flags[1]: flag "mh-port" is listed twice: dropped`,
		`testdata/warnings-case.good.yaml:21:23: warning: services[1].ipvs.scheduler: unknown scheduler "Round-Robin", using wrr`,
	}, func(t *testing.T, c *Config) {
		diff(t, "wrr tunnel [tcp]", c.Defaults.IPVS.Scheduler+" "+c.Defaults.IPVS.Forwarding+" "+fmt.Sprint(c.Defaults.Protocols))
		diff(t, []string{
			"nat 10.54.213.247:80 udp [10.0.1.5:80/1] mh nat [mh-port] 0/0",
			"unknown 10.54.213.247:443 tcp [10.0.1.5:443/1] wrr tunnel [] 0/0",
		}, services(c))
	}},
	{"warnings-empty-defaults.good.yaml", []string{
		`testdata/warnings-empty-defaults.good.yaml:8:16: warning: defaults.ipvs.scheduler: empty scheduler, using wrr`,
		`testdata/warnings-empty-defaults.good.yaml:9:17: warning: defaults.ipvs.forwarding: empty forwarding method, using dr`,
	}, func(t *testing.T, c *Config) {
		diff(t, []string{
			"web 10.54.213.247:80 tcp [10.0.1.5:80/1] wrr dr [] 100/0",
		}, services(c))
	}},
}

func TestGoodFiles(t *testing.T) {
	for _, tc := range goodFiles {
		t.Run(strings.TrimSuffix(tc.file, ".good.yaml"), func(t *testing.T) {
			c := mustLoad(t, filepath.Join("testdata", tc.file))
			diff(t, tc.warnings, nilIfEmpty(lines(c.Warnings)))
			tc.check(t, c)
		})
	}
}

// TestExamples loads every file of examples/ as a good file: no error and no warning.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c := mustLoad(t, f)
			diff(t, []string(nil), nilIfEmpty(lines(c.Warnings)))
		})
	}
}

// TestTablesCoverTestdata fails when a testdata file has no table entry, or an entry no file.
func TestTablesCoverTestdata(t *testing.T) {
	want := map[string]bool{}
	for _, tc := range badFiles {
		want[tc.file] = true
	}
	for _, tc := range goodFiles {
		want[tc.file] = true
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	have := map[string]bool{}
	for _, f := range files {
		have[filepath.Base(f)] = true
		if !want[filepath.Base(f)] {
			t.Errorf("%s has no entry in badFiles or goodFiles", f)
		}
		if !strings.HasSuffix(f, ".bad.yaml") && !strings.HasSuffix(f, ".good.yaml") {
			t.Errorf("%s: testdata files end in .bad.yaml or .good.yaml", f)
		}
	}
	for f := range want {
		if !have[f] {
			t.Errorf("table entry %s has no file in testdata", f)
		}
	}
}

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return c
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func diff(t *testing.T, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpAddr); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func diffConfig(t *testing.T, want, got schema.ClusterConfig) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpAddr); d != "" {
		t.Errorf("effective config (-want +got):\n%s", d)
	}
}

// services summarizes each effective service on one line:
// "name vip:port protocols [backend:port/weight ...] scheduler forwarding [flags] upper/lower".
func services(c *Config) []string {
	var out []string
	for _, s := range c.Services {
		var bs []string
		for _, b := range s.Backends {
			bs = append(bs, fmt.Sprintf("%s:%d/%d", b.Address, b.Port, *b.Weight))
		}
		o := s.IPVS
		out = append(out, fmt.Sprintf("%s %s:%d %s [%s] %s %s [%s] %d/%d", s.Name, s.VIP, s.Port,
			strings.Join(s.Protocols, ","), strings.Join(bs, " "), o.Scheduler, o.Forwarding,
			strings.Join(o.Flags, " "), *o.UpperThreshold, *o.LowerThreshold))
	}
	return out
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = addr(s)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// everyKey is the effective config of testdata/every-key.good.yaml.
func everyKey() schema.ClusterConfig {
	return schema.ClusterConfig{
		APIVersion: "ravel/v1",
		Kind:       "ClusterConfig",
		Node: schema.Node{Name: "director-1", Role: "director", Interface: "bond0", VIPInterface: "lo",
			Gateway: ptr(addr("10.54.213.1"))},
		Kubernetes: &schema.Kubernetes{
			Kubeconfig:        "/etc/ravel/kubeconfig",
			NodeSelector:      map[string]string{"node-role.kubernetes.io/lb-backend": "true"},
			IncludeCordoned:   true,
			Debounce:          schema.Debounce{Quiet: schema.Duration(250 * time.Millisecond), MaxDelay: schema.Duration(2 * time.Second)},
			KeepLastEndpoints: false,
		},
		VIPPool: addrs("10.54.213.247", "10.54.213.248"),
		Defaults: schema.Defaults{
			Protocols: []string{"tcp", "udp"},
			IPVS: schema.IPVSOptions{Scheduler: "mh", Forwarding: "tunnel", Flags: []string{"mh-port"},
				UpperThreshold: ptr(1000), LowerThreshold: ptr(500)},
			DrainTimeout: schema.Duration(45 * time.Second),
			HealthCheck: schema.HealthCheck{Type: "http", Port: 8081, Path: "/ready", ExpectStatus: 204, Host: "web.example",
				Interval: schema.Duration(3 * time.Second), Timeout: schema.Duration(500 * time.Millisecond), Rise: 3, Fall: 4},
		},
		Services: []schema.Service{
			{
				Name: "web", VIP: addr("10.54.213.247"), Port: 80, Protocols: []string{"tcp"},
				Kubernetes: &schema.KubeTarget{Namespace: "web", Service: "nginx", PortName: "http"},
				IPVS: &schema.IPVSOptions{Scheduler: "mh", Forwarding: "tunnel", Flags: []string{"mh-port", "mh-fallback"},
					UpperThreshold: ptr(50000), LowerThreshold: ptr(25000)},
			},
			{
				Name: "static", VIP: addr("10.54.213.248"), Port: 443, Protocols: []string{"tcp", "udp"},
				Backends: []schema.Backend{
					{Address: addr("10.0.1.5"), Port: 8443, Weight: ptr(3)},
					{Address: addr("10.0.1.6"), Port: 443, Weight: ptr(1)},
				},
				IPVS: &schema.IPVSOptions{Scheduler: "sh", Forwarding: "nat", Flags: []string{"sh-port"},
					UpperThreshold: ptr(1000), LowerThreshold: ptr(500)},
				HealthCheck: &schema.HealthCheck{Type: "tcp", Port: 9000, Path: "/live", ExpectStatus: 202, Host: "static.example",
					Interval: schema.Duration(5 * time.Second), Timeout: schema.Duration(2 * time.Second), Rise: 5, Fall: 6},
				SorryServer: &schema.SorryServer{Address: addr("10.0.1.9"), Port: 8080},
			},
		},
		Colocation:  "colocated",
		IPVSSysctls: map[string]int{"conntrack": 1, "sloppy_tcp": 1, "expire_nodest_conn": 1},
		Coordinator: schema.Coordinator{Listen: addr("10.0.0.10"), Ports: []int{44444, 44445}, FailoverTimeout: schema.Duration(3 * time.Second)},
		Rules:       schema.Rules{Backend: "nftables", Table: "ravel-lb", InZone: false},
		IPTables:    schema.IPTables{Chain: "RAVEL_LB", Masquerade: true, Backend: "legacy"},
		Health: schema.Health{Listen: "10.0.0.10:10300", CheckRealservers: false, Interval: schema.Duration(4 * time.Second),
			Timeout: schema.Duration(2 * time.Second), Rise: 3, Fall: 5, DrainDelay: schema.Duration(12 * time.Second), MaxInFlight: 32},
		Management: schema.Management{Port: 8080, Protocol: "udp",
			Kubernetes: &schema.KubeTarget{Namespace: "kube-system", Service: "ravel-mgmt", PortName: "mgmt"}},
		ARP:     schema.ARP{Interval: schema.Duration(10 * time.Second)},
		Resync:  schema.Duration(2 * time.Minute),
		Metrics: schema.Metrics{Listen: ":10234"},
		BGP: &schema.BGP{ASN: 65010, RouterID: ptr(addr("10.0.0.10")), ListenPort: 1179,
			Peers: []schema.BGPPeer{{Address: addr("10.0.0.1"), ASN: 65000, Port: 1790, Password: "s3cret",
				HoldTime: schema.Duration(9 * time.Second), KeepaliveTime: schema.Duration(3 * time.Second), ConnectRetry: schema.Duration(2 * time.Second),
				Multihop: 2, BFD: schema.BFD{Enabled: true, MinInterval: schema.Duration(100 * time.Millisecond), Multiplier: 5},
				GracefulRestart: schema.GracefulRestart{Enabled: true, RestartTime: schema.Duration(60 * time.Second)}}},
			Communities: []string{"65010:100"}, LargeCommunities: []string{"65010:1:2"}, LocalPreference: 200, MED: 10,
			NextHop: ptr(addr("10.0.0.10"))},
	}
}
