package daemon

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/kube"
)

// staticIPVS is what testdata/director-static.yaml programs.
const staticIPVS = `tcp 10.54.213.247:80 wrr flags=0x0
  -> 10.0.1.5:80 dr w=3 x=0 y=0
  -> 10.0.1.6:80 dr w=1 x=0 y=0
tcp 10.54.213.248:53 wrr flags=0x0
  -> 10.0.1.7:53 dr w=1 x=0 y=0
udp 10.54.213.248:53 wrr flags=0x0
  -> 10.0.1.7:53 dr w=1 x=0 y=0
`

// kubeSnapshot is three eligible nodes with 2, 1 and 1 ready endpoints of web/nginx:http, an
// unready endpoint on n1, and a node outside the selector that has a ready endpoint.
func kubeSnapshot(opts ...snapOpt) *kube.Snapshot {
	base := []snapOpt{
		withNode("n1", "10.1.0.1"), withNode("n2", "10.1.0.2"), withNode("n3", "10.1.0.3"),
		withNode("other", "10.1.0.9", notSelected),
		withEndpoints(webRef,
			ready("10.244.1.5", 8080, "n1"), ready("10.244.1.6", 8080, "n1"), unready("10.244.1.7", 8080, "n1"),
			ready("10.244.2.5", 8080, "n2"), ready("10.244.3.5", 8080, "n3"), ready("10.244.9.5", 8080, "other")),
	}
	return makeSnapshot(append(base, opts...)...)
}

// kubeIPVS is what testdata/director-kube.yaml programs for kubeSnapshot.
const kubeIPVS = `tcp 10.54.213.247:80 wrr flags=0x0
  -> 10.1.0.1:80 dr w=2 x=0 y=0
  -> 10.1.0.2:80 dr w=1 x=0 y=0
  -> 10.1.0.3:80 dr w=1 x=0 y=0
`

// TestDirectorFullSyncFromEmpty programs an empty kernel and then finds nothing left to do.
func TestDirectorFullSyncFromEmpty(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		snap       *kube.Snapshot
		wantIPVS   string
		wantLinks  string
		wantSysctl string // the net/ipv4/vs/ keys
		wantSets   []string
	}{
		{
			name:     "static backends",
			config:   "director-static.yaml",
			wantIPVS: staticIPVS,
			wantLinks: "lo device down\n" +
				"ravel0 dummy up\n  10.54.213.247/32\n  10.54.213.248/32\n",
			wantSysctl: "net/ipv4/vs/conn_reuse_mode = 1\n" +
				"net/ipv4/vs/conntrack = 1\n" +
				"net/ipv4/vs/expire_nodest_conn = 1\n" +
				"net/ipv4/vs/expire_quiescent_template = 0\n" +
				"net/ipv4/vs/ignore_tunneled = 0\n" +
				"net/ipv4/vs/schedule_icmp = 0\n" +
				"net/ipv4/vs/sloppy_tcp = 0\n" +
				"net/ipv4/vs/sync_threshold = 3\t50\n",
			wantSets: []string{"Set net/ipv4/vs/conntrack = 1", "Set net/ipv4/vs/expire_nodest_conn = 1"},
		},
		{
			name:      "kubernetes endpoints",
			config:    "director-kube.yaml",
			snap:      kubeSnapshot(withChanged(webRef), withNodesChanged),
			wantIPVS:  kubeIPVS,
			wantLinks: "lo device down\nravel0 dummy up\n  10.54.213.247/32\n",
			wantSysctl: "net/ipv4/vs/conn_reuse_mode = 1\n" +
				"net/ipv4/vs/conntrack = 0\n" +
				"net/ipv4/vs/expire_nodest_conn = 0\n" +
				"net/ipv4/vs/expire_quiescent_template = 0\n" +
				"net/ipv4/vs/ignore_tunneled = 0\n" +
				"net/ipv4/vs/schedule_icmp = 0\n" +
				"net/ipv4/vs/sloppy_tcp = 0\n" +
				"net/ipv4/vs/sync_threshold = 3\t50\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes()
			d, _, m := newTestDirector(t, loadConfig(t, tt.config), f, nil)
			d.snap = tt.snap
			d.FullSync()

			if diff := cmp.Diff(tt.wantIPVS, f.ipvs.Dump()); diff != "" {
				t.Errorf("IPVS (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLinks, f.links.Dump()); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSysctl, sysctlLines(f.sysctl.Dump(), "net/ipv4/vs/")); diff != "" {
				t.Errorf("sysctls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSets, f.sysctl.Log()); diff != "" {
				t.Errorf("sysctl writes (-want +got):\n%s", diff)
			}
			if got := value(t, m.Syncs.WithLabelValues("full", "ok")); got != 1 {
				t.Errorf("ravel_reconcile_total{kind=full,result=ok} = %v, want 1", got)
			}
			if got := value(t, m.ApplyErrors); got != 0 {
				t.Errorf("ravel_apply_errors_total = %v, want 0", got)
			}

			// The second sync reads everything again and finds nothing to change.
			f.resetCalls()
			d.FullSync()
			if got := f.mutations(); len(got) != 0 {
				t.Errorf("second FullSync changed the kernel:\n%q", got)
			}
			if f.ipvs.Calls("Services") != 1 {
				t.Errorf("second FullSync listed IPVS services %d times, want 1 (a full read)", f.ipvs.Calls("Services"))
			}
			if got := value(t, m.Syncs.WithLabelValues("full", "ok")); got != 2 {
				t.Errorf("ravel_reconcile_total{kind=full,result=ok} = %v, want 2", got)
			}
		})
	}
}

// TestDirectorAdoptsOnRestart: a new director over a kernel that already holds its state (a
// restart) changes nothing: it never drops and re-adds a VIP or a service.
func TestDirectorAdoptsOnRestart(t *testing.T) {
	tests := []struct {
		name   string
		config string
		snap   *kube.Snapshot
	}{
		{"static backends", "director-static.yaml", nil},
		{"kubernetes endpoints", "director-kube.yaml", kubeSnapshot(withChanged(webRef), withNodesChanged)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes()
			first, _, _ := newTestDirector(t, loadConfig(t, tt.config), f, nil)
			if tt.snap != nil {
				first.OnSnapshot(tt.snap)
			} else {
				first.FullSync()
			}
			before := f.ipvs.Dump() + f.links.Dump() + f.sysctl.Dump()
			f.resetCalls()

			garp := &fakeAnnouncer{}
			second, _, m := newTestDirector(t, loadConfig(t, tt.config), f, garp)
			if tt.snap != nil {
				second.OnSnapshot(tt.snap)
			} else {
				second.FullSync()
			}
			if got := f.mutations(); len(got) != 0 {
				t.Errorf("restarted director changed the kernel:\n%q", got)
			}
			if diff := cmp.Diff(before, f.ipvs.Dump()+f.links.Dump()+f.sysctl.Dump()); diff != "" {
				t.Errorf("state after restart (-before +after):\n%s", diff)
			}
			if got := value(t, m.Ops.WithLabelValues("add-service")); got != 0 {
				t.Errorf("ravel_plan_ops_total{kind=add-service} = %v, want 0", got)
			}
			// A restarted director (maybe on another machine after a failover) announces every
			// VIP once, although it bound none of them.
			if diff := cmp.Diff(sortedVIPs(second), garp.take()); diff != "" {
				t.Errorf("announcements after restart (-want +got):\n%s", diff)
			}
		})
	}
}

func sortedVIPs(d *Director) []string {
	var out []string
	for _, v := range []string{"10.54.213.247", "10.54.213.248"} {
		if d.desired.VIPs[netip.MustParseAddr(v)] {
			out = append(out, v)
		}
	}
	return out
}

// TestDirectorRepairsDrift: whatever is done to ravel's objects behind its back is undone by the
// next full sync, and foreign objects (an IPVS service outside vipPool, a foreign dummy device,
// addresses on another device or outside vipPool) survive every sync untouched.
func TestDirectorRepairsDrift(t *testing.T) {
	web := svcKey("10.54.213.247", 80, "tcp")
	dnsUDP := svcKey("10.54.213.248", 53, "udp")
	tests := []struct {
		name    string
		drift   func(t *testing.T, f *fakes)
		wantOps []string // the repair, as the fakes log it
	}{
		{
			name: "service deleted (ipvsadm -D)",
			drift: func(t *testing.T, f *fakes) {
				must(t, f.ipvs.DelService(dnsUDP))
			},
			wantOps: []string{
				"ipvs: AddService udp 10.54.213.248:53 wrr flags=0x0",
				"ipvs: AddDestination udp 10.54.213.248:53 -> 10.0.1.7:53 dr w=1 x=0 y=0",
			},
		},
		{
			name: "VIP unbound (ip addr del)",
			drift: func(t *testing.T, f *fakes) {
				must(t, f.links.DelAddr("ravel0", netip.MustParsePrefix("10.54.213.247/32")))
			},
			wantOps: []string{"links: AddAddr ravel0 10.54.213.247/32"},
		},
		{
			name: "service deleted and VIP unbound",
			drift: func(t *testing.T, f *fakes) {
				must(t, f.ipvs.DelService(web))
				must(t, f.links.DelAddr("ravel0", netip.MustParsePrefix("10.54.213.247/32")))
			},
			wantOps: []string{
				"ipvs: AddService tcp 10.54.213.247:80 wrr flags=0x0",
				"ipvs: AddDestination tcp 10.54.213.247:80 -> 10.0.1.5:80 dr w=3 x=0 y=0",
				"ipvs: AddDestination tcp 10.54.213.247:80 -> 10.0.1.6:80 dr w=1 x=0 y=0",
				"links: AddAddr ravel0 10.54.213.247/32",
			},
		},
		{
			name: "weight and scheduler edited by hand",
			drift: func(t *testing.T, f *fakes) {
				must(t, f.ipvs.UpdateDestination(web, dest("10.0.1.5", 80, 7)))
				must(t, f.ipvs.UpdateService(svc(web, "rr")))
			},
			wantOps: []string{
				"ipvs: UpdateService tcp 10.54.213.247:80 wrr flags=0x0",
				"ipvs: UpdateDestination tcp 10.54.213.247:80 -> 10.0.1.5:80 dr w=3 x=0 y=0",
			},
		},
		{
			name: "stray destination added by hand",
			drift: func(t *testing.T, f *fakes) {
				must(t, f.ipvs.AddDestination(web, dest("10.0.1.99", 80, 0)))
				must(t, f.ipvs.SetStats(web, dest("10.0.1.99", 80, 0).DestKey, statsIdle))
			},
			wantOps: []string{"ipvs: DelDestination tcp 10.54.213.247:80 -> 10.0.1.99:80"},
		},
		{
			name: "VIP device set down (ip link set ravel0 down)",
			drift: func(t *testing.T, f *fakes) {
				f.links.AddDevice("ravel0", "dummy", false, netip.MustParsePrefix("10.54.213.247/32"),
					netip.MustParsePrefix("10.54.213.248/32"), netip.MustParsePrefix("192.0.2.1/32"),
					netip.MustParsePrefix("10.54.213.248/24"))
				if f.links.IsUp("ravel0") {
					t.Fatal("ravel0 still up")
				}
			},
			wantOps: nil, // set up again by EnsureDummy, which the links Dump shows
		},
		{
			name: "sysctl reset",
			drift: func(t *testing.T, f *fakes) {
				must(t, f.sysctl.Set("net/ipv4/vs/conntrack", "0"))
			},
			wantOps: []string{"sysctl: Set net/ipv4/vs/conntrack = 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes()
			seedForeign(t, f)
			d, _, _ := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
			d.FullSync()
			want := f.ipvs.Dump() + f.links.Dump() + f.sysctl.Dump()
			if diff := cmp.Diff(staticIPVS+foreignIPVS, f.ipvs.Dump()); diff != "" {
				t.Fatalf("first sync (-want +got):\n%s", diff)
			}

			tt.drift(t, f)
			f.resetCalls()
			d.FullSync()
			if diff := cmp.Diff(tt.wantOps, f.mutations()); diff != "" {
				t.Errorf("repair (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, f.ipvs.Dump()+f.links.Dump()+f.sysctl.Dump()); diff != "" {
				t.Errorf("state after repair (-want +got):\n%s", diff)
			}
			f.resetCalls()
			d.FullSync()
			if got := f.mutations(); len(got) != 0 {
				t.Errorf("sync after repair changed the kernel:\n%q", got)
			}
		})
	}
}

// foreignIPVS is seedForeign's IPVS service, as it must stay.
const foreignIPVS = `tcp 10.99.0.1:80 rr flags=0x0
  -> 10.99.1.1:80 nat w=1 x=0 y=0
`

// seedForeign puts objects in the kernel that ravel does not own: an IPVS service outside
// vipPool, a foreign dummy device holding a pool address, the node's primary interface (a sibling
// of ravel0) with a pool address of its own, and on ravel0 an address outside vipPool and a
// pool address with a prefix other than /32.
func seedForeign(t *testing.T, f *fakes) {
	t.Helper()
	k := svcKey("10.99.0.1", 80, "tcp")
	must(t, f.ipvs.AddService(svc(k, "rr")))
	nat := dest("10.99.1.1", 80, 1)
	nat.Forward = 2 // netops.ForwardNAT
	must(t, f.ipvs.AddDestination(k, nat))
	f.links.AddDevice("foreign0", "dummy", true, netip.MustParsePrefix("10.54.213.248/32"))
	f.links.AddDevice("eth0", "veth", true, netip.MustParsePrefix("10.54.213.10/24"), netip.MustParsePrefix("10.54.213.247/32"))
	f.links.AddDevice("ravel0", "dummy", true, netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("10.54.213.248/24"))
	f.resetCalls()
}

// TestDirectorForeignObjectsSurvive runs the first sync over a kernel full of foreign objects and
// checks they are byte for byte what they were.
func TestDirectorForeignObjectsSurvive(t *testing.T) {
	f := newFakes()
	seedForeign(t, f)
	d, _, _ := newTestDirector(t, loadConfig(t, "director-static.yaml"), f, nil)
	d.FullSync()
	d.FullSync()
	if diff := cmp.Diff(staticIPVS+foreignIPVS, f.ipvs.Dump()); diff != "" {
		t.Errorf("IPVS (-want +got):\n%s", diff)
	}
	wantLinks := "eth0 veth up\n  10.54.213.10/24\n  10.54.213.247/32\n" +
		"foreign0 dummy up\n  10.54.213.248/32\n" +
		"lo device down\n" +
		"ravel0 dummy up\n  10.54.213.247/32\n  10.54.213.248/24\n  10.54.213.248/32\n  192.0.2.1/32\n"
	if diff := cmp.Diff(wantLinks, f.links.Dump()); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
	for _, l := range f.ipvs.Log() {
		if contains(l, "10.99.") {
			t.Errorf("foreign IPVS service touched: %s", l)
		}
	}
}
