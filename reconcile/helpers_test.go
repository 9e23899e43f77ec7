package reconcile

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
)

// cmpOpts compares netip values by value (their fields are unexported) and treats nil and
// empty maps and slices alike.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

// ---------------------------------------------------------------------------------------
// Configs: built as YAML and loaded by config.Parse, so tests see exactly what the daemon
// sees (defaults resolved, normalized).

type cfgSpec struct {
	role, nodeName, vipInterface string
	colocated                    bool
	kube                         bool
	includeCordoned              bool
	extraPool                    []string
	sysctls                      []string // "key: value"
	services                     []svcSpec
}

type svcSpec struct {
	name      string
	vip       string
	port      int
	protocols []string
	backends  []string // YAML flow mappings
	kube      string   // YAML flow mapping
	ipvs      []string // "key: value"
}

type cfgOpt func(*cfgSpec)
type svcOpt func(*svcSpec)

// makeConfig loads a config of a director named "director-1" with the given options.
func makeConfig(tb testing.TB, opts ...cfgOpt) *config.Config {
	tb.Helper()
	s := cfgSpec{role: "director", nodeName: "director-1", vipInterface: "ravel0"}
	for _, o := range opts {
		o(&s)
	}
	y := s.yaml()
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		tb.Fatalf("config.Parse: %v\n%s", err, y)
	}
	return cfg
}

func (s cfgSpec) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: %s, role: %s, vipInterface: %s}\n", s.nodeName, s.role, s.vipInterface)
	if s.kube {
		fmt.Fprintf(&b, "kubernetes: {includeCordoned: %t}\n", s.includeCordoned)
	}
	if s.colocated {
		b.WriteString("colocation: colocated\n")
	}
	pool := map[string]bool{}
	var poolList []string
	for _, a := range append(svcVIPs(s.services), s.extraPool...) {
		if !pool[a] {
			pool[a] = true
			poolList = append(poolList, a)
		}
	}
	fmt.Fprintf(&b, "vipPool: [%s]\n", strings.Join(poolList, ", "))
	if len(s.sysctls) > 0 {
		fmt.Fprintf(&b, "ipvsSysctls: {%s}\n", strings.Join(s.sysctls, ", "))
	}
	b.WriteString("services:\n")
	if len(s.services) == 0 {
		b.WriteString("  []\n")
	}
	for _, sv := range s.services {
		fmt.Fprintf(&b, "  - vip: %s\n    port: %d\n", sv.vip, sv.port)
		if sv.name != "" {
			fmt.Fprintf(&b, "    name: %s\n", sv.name)
		}
		if sv.protocols != nil {
			fmt.Fprintf(&b, "    protocols: [%s]\n", strings.Join(sv.protocols, ", "))
		}
		if sv.kube != "" {
			fmt.Fprintf(&b, "    kubernetes: {%s}\n", sv.kube)
		}
		if sv.backends != nil {
			fmt.Fprintf(&b, "    backends:\n")
			for _, be := range sv.backends {
				fmt.Fprintf(&b, "      - {%s}\n", be)
			}
		}
		if len(sv.ipvs) > 0 {
			fmt.Fprintf(&b, "    ipvs: {%s}\n", strings.Join(sv.ipvs, ", "))
		}
	}
	return b.String()
}

func svcVIPs(svcs []svcSpec) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, s.vip)
	}
	return out
}

func withRole(r string) cfgOpt         { return func(s *cfgSpec) { s.role = r } }
func withVIPInterface(d string) cfgOpt { return func(s *cfgSpec) { s.vipInterface = d } }
func withColocated() cfgOpt            { return func(s *cfgSpec) { s.colocated = true } }
func withPool(addrs ...string) cfgOpt {
	return func(s *cfgSpec) { s.extraPool = append(s.extraPool, addrs...) }
}
func withSysctl(k string, v int) cfgOpt {
	return func(s *cfgSpec) { s.sysctls = append(s.sysctls, fmt.Sprintf("%s: %d", k, v)) }
}

// withKubernetes adds the top-level kubernetes section.
func withKubernetes(includeCordoned bool) cfgOpt {
	return func(s *cfgSpec) { s.kube, s.includeCordoned = true, includeCordoned }
}

// withService adds a service on vipPort ("10.0.0.1:80"); its VIP joins the pool.
func withService(name, vipPort string, opts ...svcOpt) cfgOpt {
	return func(s *cfgSpec) { s.services = append(s.services, makeSvcSpec(name, vipPort, opts...)) }
}

func makeSvcSpec(name, vipPort string, opts ...svcOpt) svcSpec {
	ap := netip.MustParseAddrPort(vipPort)
	sv := svcSpec{name: name, vip: ap.Addr().String(), port: int(ap.Port())}
	for _, o := range opts {
		o(&sv)
	}
	return sv
}

// withBackend adds a static backend "addr" or "addr:port" with a weight (-1: unset).
func withBackend(addr string, weight int) svcOpt {
	return func(sv *svcSpec) {
		y := ""
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			y = fmt.Sprintf("address: %s, port: %d", ap.Addr(), ap.Port())
		} else {
			y = "address: " + addr
		}
		if weight >= 0 {
			y += fmt.Sprintf(", weight: %d", weight)
		}
		sv.backends = append(sv.backends, y)
	}
}

func withProtocols(p ...string) svcOpt { return func(sv *svcSpec) { sv.protocols = p } }
func withScheduler(s string) svcOpt {
	return func(sv *svcSpec) { sv.ipvs = append(sv.ipvs, "scheduler: "+s) }
}
func withForwarding(f string) svcOpt {
	return func(sv *svcSpec) { sv.ipvs = append(sv.ipvs, "forwarding: "+f) }
}
func withFlags(f ...string) svcOpt {
	return func(sv *svcSpec) { sv.ipvs = append(sv.ipvs, "flags: ["+strings.Join(f, ", ")+"]") }
}
func withThresholds(upper, lower int) svcOpt {
	return func(sv *svcSpec) {
		sv.ipvs = append(sv.ipvs, fmt.Sprintf("upperThreshold: %d, lowerThreshold: %d", upper, lower))
	}
}

// withKube makes the service follow the Kubernetes service ns/name port portName.
func withKube(ns, name, portName string) svcOpt {
	return func(sv *svcSpec) {
		sv.kube = fmt.Sprintf("namespace: %s, service: %s, portName: %q", ns, name, portName)
	}
}

// ---------------------------------------------------------------------------------------
// Kubernetes snapshots.

type snapOpt func(*kube.Snapshot)
type nodeOpt func(*kube.Node)

func makeSnapshot(opts ...snapOpt) *kube.Snapshot {
	s := &kube.Snapshot{Nodes: map[string]kube.Node{}, Services: map[kube.ServiceRef]kube.ServiceState{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// withNode adds a ready, selected, schedulable node.
func withNode(name, addr string, opts ...nodeOpt) snapOpt {
	return func(s *kube.Snapshot) {
		n := kube.Node{Name: name, Address: netip.MustParseAddr(addr), Ready: true, Selected: true}
		for _, o := range opts {
			o(&n)
		}
		s.Nodes[name] = n
	}
}

func notReady() nodeOpt   { return func(n *kube.Node) { n.Ready = false } }
func cordoned() nodeOpt   { return func(n *kube.Node) { n.Cordoned = true } }
func unselected() nodeOpt { return func(n *kube.Node) { n.Selected = false } }
func noAddress() nodeOpt  { return func(n *kube.Node) { n.Address = netip.Addr{} } }

func ref(ns, name, port string) kube.ServiceRef {
	return kube.ServiceRef{Namespace: ns, Service: name, PortName: port, Family: family.IPv4}
}

// withPods gives ref n ready endpoints on node (and notReady unready ones), appended to
// what it has.
func withPods(r kube.ServiceRef, node string, ready, notReady int) snapOpt {
	return func(s *kube.Snapshot) {
		st := s.Services[r]
		st.Status = kube.StatusOK
		base := len(st.Endpoints)
		for i := range ready + notReady {
			n := base + i
			st.Endpoints = append(st.Endpoints, kube.Endpoint{
				Address:  netip.AddrFrom4([4]byte{10, 244, byte(n >> 8), byte(n)}),
				NodeName: node, Ready: i < ready, Serving: i < ready, Port: 8080,
			})
		}
		s.Services[r] = st
		s.Changed = append(s.Changed, r)
	}
}

// ---------------------------------------------------------------------------------------
// States, for Diff tests.

type stateOpt func(*State)
type destOpt func(*netops.Destination)

func makeState(opts ...stateOpt) *State {
	st := NewState("ravel0")
	for _, o := range opts {
		o(st)
	}
	return st
}

// skey parses "tcp 10.0.0.1:80".
func skey(s string) netops.ServiceKey {
	proto, ap, ok := strings.Cut(s, " ")
	if !ok {
		panic("skey: want \"tcp 10.0.0.1:80\", got " + s)
	}
	p, err := netops.ParseProto(proto)
	if err != nil {
		panic(err)
	}
	a := netip.MustParseAddrPort(ap)
	return netops.ServiceKey{VIP: a.Addr(), Port: a.Port(), Proto: p}
}

func dkey(s string) netops.DestKey {
	a := netip.MustParseAddrPort(s)
	return netops.DestKey{Addr: a.Addr(), Port: a.Port()}
}

// dest builds a DR destination "addr:port" with a weight.
func dest(addrPort string, weight int, opts ...destOpt) netops.Destination {
	d := netops.Destination{DestKey: dkey(addrPort), Weight: weight}
	for _, o := range opts {
		o(&d)
	}
	return d
}

func fwd(f netops.Forward) destOpt { return func(d *netops.Destination) { d.Forward = f } }
func thr(upper, lower uint32) destOpt {
	return func(d *netops.Destination) { d.Upper, d.Lower = upper, lower }
}

type vsOpt func(*VirtualService)

func sched(s string) vsOpt            { return func(v *VirtualService) { v.Scheduler = s } }
func flags(f netops.SchedFlags) vsOpt { return func(v *VirtualService) { v.Flags = f } }
func named(n string) vsOpt            { return func(v *VirtualService) { v.Name = n } }
func dests(ds ...netops.Destination) vsOpt {
	return func(v *VirtualService) {
		for _, d := range ds {
			v.Dests[d.DestKey] = d
		}
	}
}

func makeVS(key string, opts ...vsOpt) *VirtualService {
	v := &VirtualService{
		Service: netops.Service{ServiceKey: skey(key), Scheduler: "wrr"},
		Dests:   map[netops.DestKey]netops.Destination{},
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

// withVS adds a virtual service; its VIP is bound.
func withVS(key string, opts ...vsOpt) stateOpt {
	return func(st *State) {
		v := makeVS(key, opts...)
		st.Services[v.ServiceKey] = v
		st.VIPs[v.VIP] = true
	}
}

// withBareVS adds a virtual service without binding its VIP.
func withBareVS(key string, opts ...vsOpt) stateOpt {
	return func(st *State) {
		v := makeVS(key, opts...)
		st.Services[v.ServiceKey] = v
	}
}

func withVIP(addr string) stateOpt {
	return func(st *State) { st.VIPs[netip.MustParseAddr(addr)] = true }
}

func withoutVIP(addr string) stateOpt {
	return func(st *State) { delete(st.VIPs, netip.MustParseAddr(addr)) }
}

func withSysctlValue(k, v string) stateOpt { return func(st *State) { st.Sysctls[k] = v } }
func withDevice(d string) stateOpt         { return func(st *State) { st.Device = d } }

func withStats(svc, d string, active, inactive int) stateOpt {
	return func(st *State) {
		st.Stats[DestRef{skey(svc), dkey(d)}] = netops.DestStats{ActiveConns: active, InactiveConns: inactive}
	}
}

func owned(addrs ...string) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, a := range addrs {
		m[netip.MustParseAddr(a)] = true
	}
	return m
}

// lines returns the plan's ops as their String, one per element (nil for an empty plan).
func lines(p *Plan) []string {
	var out []string
	for _, op := range p.Ops {
		out = append(out, op.String())
	}
	return out
}

// ---------------------------------------------------------------------------------------
// Fakes.

type fakes struct {
	ipvs   *netops.FakeIPVS
	links  *netops.FakeLinks
	sysctl *netops.FakeSysctl
}

func newFakes() fakes {
	return fakes{netops.NewFakeIPVS(), netops.NewFakeLinks(), netops.NewFakeSysctl()}
}

func (f fakes) kernel() Kernel { return Kernel{IPVS: f.ipvs, Links: f.links, Sysctl: f.sysctl} }

// dump is the whole fake kernel as text: IPVS, links, then the sysctls whose keys are given.
func (f fakes) dump(t *testing.T, sysctlKeys ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# ipvs\n")
	b.WriteString(f.ipvs.Dump())
	b.WriteString("# links\n")
	b.WriteString(f.links.Dump())
	b.WriteString("# sysctl\n")
	for _, k := range sysctlKeys {
		v, err := f.sysctl.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	return b.String()
}

// readActual reads the fakes as the daemon would for cfg's desired sysctl keys.
func readActual(t *testing.T, f fakes, device string, own map[netip.Addr]bool, desired *State) *State {
	t.Helper()
	act, err := ReadActual(f.kernel(), device, own, sortedKeys(desired.Sysctls))
	if err != nil {
		t.Fatalf("ReadActual: %v", err)
	}
	return act
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
