package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/reconcile"
)

// TestMain fails the package when a test leaves a goroutine behind: a role loop that was never
// stopped, a coordinator accept loop that was never closed, a watcher that outlived its ctx.
// GoBGP (the bgp role's speaker) leaves one goroutine per stopped peer: the buffer of an
// eapache/channels InfiniteChannel that it never closes. It is GoBGP's, idle, and not ravel's
// to stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/eapache/channels.(*InfiniteChannel).infiniteBuffer"))
}

var errInjected = errors.New("injected failure")

// loadConfig loads testdata/name with the loader the daemon uses.
func loadConfig(t *testing.T, name string) *config.Config {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

func nodeOf(cfg *config.Config) reconcile.Node {
	return reconcile.Node{Name: cfg.Node.Name, Role: cfg.Node.Role}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakes is one node's kernel, made of the netops semantic fakes.
type fakes struct {
	ipvs   *netops.FakeIPVS
	links  *netops.FakeLinks
	sysctl *netops.FakeSysctl
	tables *iptables.Fake
}

func newFakes() *fakes {
	return &fakes{ipvs: netops.NewFakeIPVS(), links: netops.NewFakeLinks(), sysctl: netops.NewFakeSysctl(), tables: iptables.NewFake("RAVEL")}
}

// kernel is what the director is given. Its Links make the per-interface sysctl keys of a device
// appear when the device is created, as the kernel does (kernelLinks).
func (f *fakes) kernel() reconcile.Kernel {
	return reconcile.Kernel{IPVS: f.ipvs, Links: f.kernelLinks(), Sysctl: f.sysctl}
}

func (f *fakes) kernelLinks() netops.Links { return kernelLinks{f.links, f.sysctl} }

// kernelLinks ties FakeLinks to FakeSysctl the way the kernel ties devices to
// /proc/sys/net/ipv4/conf/<dev>: a key of tunl0 exists only once tunl0 does, so code that
// writes tunl0's rp_filter before creating tunl0 fails here as it would on a real node.
type kernelLinks struct {
	*netops.FakeLinks
	sys *netops.FakeSysctl
}

func (k kernelLinks) EnsureDummy(name string) error {
	return k.created(name, k.FakeLinks.EnsureDummy)
}

func (k kernelLinks) EnsureIPIP(name string) error {
	return k.created(name, k.FakeLinks.EnsureIPIP)
}

// created runs ensure and adds the device's sysctl keys if it created the device (keys of a
// device that was there keep their values).
func (k kernelLinks) created(name string, ensure func(string) error) error {
	existed := k.Kind(name) != ""
	if err := ensure(name); err != nil {
		return err
	}
	if !existed {
		k.sys.AddInterface(name)
	}
	return nil
}

// mutations returns the state-changing calls made on the IPVS, links and sysctl fakes since
// the last ResetCalls, prefixed with the fake's name. EnsureDummy and EnsureIPIP are left out:
// they are idempotent create-or-set-up calls that the director and the realserver make on every
// full sync (a device set down by hand is invisible to a diff), so their effect is checked in
// the links Dump instead.
func (f *fakes) mutations() []string {
	var out []string
	for _, s := range f.ipvs.Log() {
		out = append(out, "ipvs: "+s)
	}
	for _, s := range f.links.Log() {
		if strings.HasPrefix(s, "EnsureDummy ") || strings.HasPrefix(s, "EnsureIPIP ") {
			continue
		}
		out = append(out, "links: "+s)
	}
	for _, s := range f.sysctl.Log() {
		out = append(out, "sysctl: "+s)
	}
	return out
}

func (f *fakes) resetCalls() {
	f.ipvs.ResetCalls()
	f.links.ResetCalls()
	f.sysctl.ResetCalls()
}

// ownedChains is the fake nat table's ravel part, as iptables-save prints it.
func (f *fakes) ownedChains(t *testing.T) string {
	t.Helper()
	s, err := f.tables.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sysctlLines returns the lines of a FakeSysctl dump whose key starts with one of prefixes.
func sysctlLines(dump string, prefixes ...string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(dump, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				b.WriteString(l)
				break
			}
		}
	}
	return b.String()
}

// fakeClock is the director's clock in tests. Only the goroutine calling the director reads
// or moves it.
type fakeClock struct{ t time.Time }

func newClock() *fakeClock                   { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }
func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// newTestDirector returns a director over f with a fake clock and metrics in a registry of
// its own (registering proves the metric names do not collide).
func newTestDirector(t *testing.T, cfg *config.Config, f *fakes, garp Announcer) (*Director, *fakeClock, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	d := NewDirector(cfg, nodeOf(cfg), f.kernel(), garp, discard, m)
	c := newClock()
	d.now = c.now
	return d, c, m
}

// value reads a counter or gauge, as prometheus/testutil.ToFloat64 does.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := c.Write(&pb); err != nil {
		t.Fatal(err)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", c.Desc())
	return 0
}

// fakeAnnouncer records gratuitous ARP announcements.
type fakeAnnouncer struct {
	mu   sync.Mutex // guards the fields below
	sent []netip.Addr
	fail []error
}

func (a *fakeAnnouncer) Announce(vip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.fail) > 0 {
		err := a.fail[0]
		a.fail = a.fail[1:]
		return err
	}
	a.sent = append(a.sent, vip)
	return nil
}

// take returns the announcements since the last take, sorted.
func (a *fakeAnnouncer) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.sent))
	for _, v := range a.sent {
		out = append(out, v.String())
	}
	a.sent = nil
	slices.Sort(out)
	return out
}

// Snapshot builders.

var (
	webRef = kube.ServiceRef{Namespace: "web", Service: "nginx", PortName: "http", Family: family.IPv4}
	apiRef = kube.ServiceRef{Namespace: "web", Service: "api", PortName: "https", Family: family.IPv4}
)

type snapOpt func(*kube.Snapshot)

// makeSnapshot builds a snapshot; by default it lists no change (as a steady-state snapshot).
func makeSnapshot(opts ...snapOpt) *kube.Snapshot {
	s := &kube.Snapshot{Nodes: map[string]kube.Node{}, Services: map[kube.ServiceRef]kube.ServiceState{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

type nodeOpt func(*kube.Node)

func notReady(n *kube.Node)    { n.Ready = false }
func notSelected(n *kube.Node) { n.Selected = false }

// withNode adds a ready, selected node.
func withNode(name, addr string, opts ...nodeOpt) snapOpt {
	return func(s *kube.Snapshot) {
		n := kube.Node{Name: name, Address: netip.MustParseAddr(addr), Ready: true, Selected: true}
		for _, o := range opts {
			o(&n)
		}
		s.Nodes[name] = n
	}
}

// withEndpoints sets the endpoints of ref (status ok), sorted as the source sorts them.
func withEndpoints(ref kube.ServiceRef, eps ...kube.Endpoint) snapOpt {
	return func(s *kube.Snapshot) {
		eps = slices.Clone(eps)
		slices.SortFunc(eps, func(a, b kube.Endpoint) int { return a.Address.Compare(b.Address) })
		s.Services[ref] = kube.ServiceState{Status: kube.StatusOK, Endpoints: eps}
	}
}

func withChanged(refs ...kube.ServiceRef) snapOpt {
	return func(s *kube.Snapshot) { s.Changed = append(s.Changed, refs...) }
}

func withNodesChanged(s *kube.Snapshot) { s.NodesChanged = true }

// ready is a ready endpoint addr:port on node.
func ready(addr string, port uint16, node string) kube.Endpoint {
	return kube.Endpoint{Address: netip.MustParseAddr(addr), Port: port, NodeName: node, Ready: true, Serving: true}
}

// unready is an endpoint that is not ready (starting, or failing its probe).
func unready(addr string, port uint16, node string) kube.Endpoint {
	e := ready(addr, port, node)
	e.Ready, e.Serving = false, false
	return e
}

// waitFor polls cond until it holds or 10 s pass (a generous bound for -race on a loaded
// machine; the conditions are met in milliseconds).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func svcKey(vip string, port uint16, proto string) netops.ServiceKey {
	p, err := netops.ParseProto(proto)
	if err != nil {
		panic(err)
	}
	return netops.ServiceKey{VIP: netip.MustParseAddr(vip), Port: port, Proto: p}
}

func svc(k netops.ServiceKey, scheduler string) netops.Service {
	return netops.Service{ServiceKey: k, Scheduler: scheduler}
}

// dest is a direct-routing destination without thresholds.
func dest(addr string, port uint16, weight int) netops.Destination {
	return netops.Destination{DestKey: netops.DestKey{Addr: netip.MustParseAddr(addr), Port: port}, Weight: weight, Forward: netops.ForwardDR}
}

var statsIdle = netops.DestStats{}

// steady returns s as the next snapshot would be if nothing changed: same content, no service
// or node listed as changed.
func steady(s *kube.Snapshot) *kube.Snapshot {
	c := *s
	c.Changed, c.NodesChanged = nil, false
	return &c
}
