package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Comcast's Ravel kept its ClusterConfig as JSON in a ConfigMap. These types are that format
// as Ravel's code reads it; Go's JSON decoder matches keys case-insensitively, as it did for
// Ravel.
type ravelConfig struct {
	VIPPool    []string                           `json:"vipPool"`
	Labels     map[string]string                  `json:"labels"`
	Config     map[string]map[string]ravelService `json:"config"`
	Config6    map[string]map[string]ravelService `json:"config6"`
	MTUConfig  map[string]string                  `json:"mtuConfig"`
	MTUConfig6 map[string]string                  `json:"mtuConfig6"`
	IPv6       map[string]string                  `json:"ipv6"`
}

type ravelService struct {
	Namespace     string           `json:"namespace"`
	Service       string           `json:"service"`
	PortName      string           `json:"portName"`
	TCPEnabled    bool             `json:"tcpEnabled"`
	UDPEnabled    bool             `json:"udpEnabled"`
	IPv4Enabled   *bool            `json:"ipv4Enabled"`
	IPv6Enabled   bool             `json:"ipv6Enabled"`
	ProxyProtocol bool             `json:"proxyProtocolEnabled"`
	IPVSOptions   ravelIPVSOptions `json:"ipvsOptions"`
}

type ravelIPVSOptions struct {
	Scheduler  string `json:"scheduler"`
	Forwarding string `json:"forwardingMethod"`
	UThreshold int    `json:"uThreshold"`
	LThreshold int    `json:"lThreshold"`
	Flags      string `json:"flags"`
}

// ravelSchedulers are the schedulers Ravel accepted; anything else it ran as wrr.
var ravelSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"}

// ravelFlags turns ipvsadm's -b flag names (flag-1, flag-2 or the scheduler's own names) into
// ravel's for scheduler sched; ok is false for a flag that means nothing to sched.
func ravelFlag(sched, flag string) (string, bool) {
	names := map[string][2]string{"sh": {"sh-fallback", "sh-port"}, "mh": {"mh-fallback", "mh-port"}}[sched]
	switch flag = strings.ToLower(strings.TrimSpace(flag)); flag {
	case "flag-1":
		return names[0], names[0] != ""
	case "flag-2":
		return names[1], names[1] != ""
	case names[0], names[1]:
		return flag, flag != ""
	}
	return "", false
}

// ImportRavel turns a Ravel ClusterConfig (the JSON of its ConfigMap, read from file name) into
// the equivalent ravel YAML. Every part that does not map is a finding (a warning: the output
// is still a config; an error when the input is not Ravel's format at all). The output leaves
// node to the operator: Ravel took the node's role and interfaces from flags.
func ImportRavel(name string, data []byte) ([]byte, Findings, error) {
	var rc ravelConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rc); err != nil {
		// Say where: encoding/json gives a byte offset (and the field, for a wrong type).
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, nil, fmt.Errorf("%s:%s: not a Ravel ClusterConfig (JSON): %w", name, lineCol(data, se.Offset-1), err)
		case errors.As(err, &te):
			return nil, nil, fmt.Errorf("%s:%s: %s: not a Ravel ClusterConfig: %s where the format has %s", name, lineCol(data, te.Offset), te.Field, te.Value, te.Type)
		}
		return nil, nil, fmt.Errorf("%s: not a Ravel ClusterConfig (JSON): %w", name, err)
	}
	var fs Findings
	warn := func(path, format string, args ...any) {
		fs = append(fs, Finding{Severity: SeverityWarning, File: name, Path: path, Message: fmt.Sprintf(format, args...)})
	}

	pool := []string{}
	inPool := map[string]bool{}
	for i, v := range rc.VIPPool {
		a, err := netip.ParseAddr(v)
		switch {
		case err != nil:
			warn(fmt.Sprintf("vipPool[%d]", i), "%q is not an IP address; left out", v)
			continue
		case !a.Is4():
			warn(fmt.Sprintf("vipPool[%d]", i), "%s: IPv6 VIPs are not imported yet (ravel serves IPv6: add them and their services by hand); left out", v)
			continue
		}
		if !inPool[a.String()] {
			inPool[a.String()] = true
			pool = append(pool, a.String())
		}
	}

	var svcs strings.Builder
	n := 0
	for _, vip := range slices.Sorted(maps.Keys(rc.Config)) {
		a, err := netip.ParseAddr(vip)
		if err != nil || !a.Is4() {
			warn(fmt.Sprintf("config[%q]", vip), "%q is not an IPv4 address; its services are left out", vip)
			continue
		}
		ports := slices.SortedFunc(maps.Keys(rc.Config[vip]), func(x, y string) int {
			nx, _ := strconv.Atoi(x)
			ny, _ := strconv.Atoi(y)
			return nx - ny
		})
		for _, ps := range ports {
			s := rc.Config[vip][ps]
			at := fmt.Sprintf("config[%q][%q]", vip, ps)
			port, err := strconv.Atoi(ps)
			if err != nil || port < 1 || port > 65535 {
				warn(at, "%q is not a port; left out", ps)
				continue
			}
			var protos []string
			if s.TCPEnabled {
				protos = append(protos, "tcp")
			}
			if s.UDPEnabled {
				protos = append(protos, "udp")
			}
			if len(protos) == 0 {
				warn(at, "neither tcpEnabled nor udpEnabled: Ravel programmed nothing for it; left out")
				continue
			}
			if s.IPv4Enabled != nil && !*s.IPv4Enabled {
				warn(at+".ipv4Enabled", "false: Ravel programmed no IPv4 service for it; left out")
				continue
			}
			if s.IPv6Enabled {
				warn(at+".ipv6Enabled", "the IPv6 side is not imported yet (ravel serves IPv6: add an IPv6 service by hand); only the IPv4 service is imported")
			}
			if s.ProxyProtocol {
				warn(at+".proxyProtocolEnabled", "ignored (Ravel never used it)")
			}
			if !inPool[a.String()] {
				warn(at, "VIP %s is not in vipPool; added to it (ravel refuses a service whose VIP is outside the pool)", vip)
				inPool[a.String()] = true
				pool = append(pool, a.String())
			}

			o := s.IPVSOptions
			sched := strings.ToLower(strings.TrimSpace(o.Scheduler))
			if sched == "" {
				sched = "wrr" // Ravel's default, silently
			} else if !slices.Contains(ravelSchedulers, sched) {
				warn(at+".ipvsOptions.scheduler", "%q is not a scheduler Ravel knew; it ran wrr, and so does this", o.Scheduler)
				sched = "wrr"
			}
			fwd := "dr"
			switch f := strings.ToLower(strings.TrimSpace(o.Forwarding)); f {
			case "g", "":
			case "i":
				fwd = "tunnel"
			default:
				warn(at+".ipvsOptions.forwardingMethod", "%q is neither g nor i; Ravel ran g (direct routing), and so does this", o.Forwarding)
			}
			var flags []string
			if strings.TrimSpace(o.Flags) == "" && sched == "mh" {
				flags = []string{"mh-fallback", "mh-port"} // what Ravel added to mh without flags
			}
			for _, fl := range strings.Split(o.Flags, ",") {
				if strings.TrimSpace(fl) == "" {
					continue
				}
				if f, ok := ravelFlag(sched, fl); ok && !slices.Contains(flags, f) {
					flags = append(flags, f)
				} else if !ok {
					warn(at+".ipvsOptions.flags", "%q means nothing to %s; dropped", strings.TrimSpace(fl), sched)
				}
			}
			upper, lower := o.UThreshold, o.LThreshold
			if upper < 0 || lower < 0 || (lower > 0 && lower >= upper) {
				warn(at+".ipvsOptions", "lThreshold %d, uThreshold %d: Ravel dropped both (lower must be below upper); so does this", lower, upper)
				upper, lower = 0, 0
			}

			n++
			fmt.Fprintf(&svcs, "  - name: %s\n    vip: %s\n    port: %d\n", yamlScalar(serviceName(s, port)), a, port)
			if len(protos) != 1 || protos[0] != "tcp" {
				fmt.Fprintf(&svcs, "    protocols: [%s]\n", strings.Join(protos, ", "))
			}
			fmt.Fprintf(&svcs, "    kubernetes: {namespace: %s, service: %s", yamlScalar(s.Namespace), yamlScalar(s.Service))
			if s.PortName != "" {
				fmt.Fprintf(&svcs, ", portName: %s", yamlScalar(s.PortName))
			}
			svcs.WriteString("}\n")
			fmt.Fprintf(&svcs, "    ipvs: {scheduler: %s, forwarding: %s", sched, fwd)
			if len(flags) > 0 {
				fmt.Fprintf(&svcs, ", flags: [%s]", strings.Join(flags, ", "))
			}
			if upper > 0 {
				fmt.Fprintf(&svcs, ", upperThreshold: %d", upper)
			}
			if lower > 0 {
				fmt.Fprintf(&svcs, ", lowerThreshold: %d", lower)
			}
			svcs.WriteString("}\n")
		}
	}
	for _, vip := range slices.Sorted(maps.Keys(rc.Config6)) {
		warn(fmt.Sprintf("config6[%q]", vip), "IPv6 services are not imported yet (ravel serves IPv6: write them as services of IPv6 VIPs by hand); left out")
	}
	for _, k := range []struct {
		key string
		m   map[string]string
	}{{"mtuConfig", rc.MTUConfig}, {"mtuConfig6", rc.MTUConfig6}, {"ipv6", rc.IPv6}} {
		if len(k.m) > 0 {
			what := "ravel sets no MTU on VIPs; set the MTU of node.interface and the tunnel yourself"
			if k.key == "ipv6" {
				what = "IPv6 VIPs are not imported yet (ravel serves IPv6: add them by hand)"
			}
			warn(k.key, "%d entries not imported: %s", len(k.m), what)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Imported from the Ravel ClusterConfig %s by `ravel config import-ravel`.\n", name)
	b.WriteString("# Ravel took node settings from flags: set node.role, node.interface and node.name\n")
	b.WriteString("# (or pass --role, --interface, --node-name to ravel run).\n")
	b.WriteString("apiVersion: ravel/v1\nkind: ClusterConfig\n")
	b.WriteString("node: {role: director, interface: eth0, vipInterface: ravel0}\n")
	b.WriteString("kubernetes:\n")
	if len(rc.Labels) > 0 {
		b.WriteString("  nodeSelector:\n")
		for _, k := range slices.Sorted(maps.Keys(rc.Labels)) {
			fmt.Fprintf(&b, "    %s: %s\n", yamlScalar(k), yamlScalar(rc.Labels[k]))
		}
	} else {
		b.WriteString("  nodeSelector: {}\n")
	}
	fmt.Fprintf(&b, "vipPool: [%s]\n", strings.Join(pool, ", "))
	if n == 0 {
		b.WriteString("services: []\n")
	} else {
		b.WriteString("services:\n")
		b.WriteString(svcs.String())
	}
	return []byte(b.String()), fs, nil
}

// serviceName is the label of an imported service: namespace/service:port.
func serviceName(s ravelService, port int) string {
	return fmt.Sprintf("%s/%s:%d", s.Namespace, s.Service, port)
}

// yamlScalar quotes s as a YAML double-quoted scalar (JSON's string syntax is a subset), so
// that no value can change the document's structure or type.
func yamlScalar(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// lineCol is "line:col" (1-based) of byte offset off in data.
func lineCol(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	return fmt.Sprintf("%d:%d", line, len(before)-bytes.LastIndexByte(before, '\n'))
}
