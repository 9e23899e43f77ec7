package reconcile

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/netops"
)

var director = Node{Name: "director-1", Role: "director"}

func TestDesiredStatic(t *testing.T) {
	tests := []struct {
		name      string
		cfg       []cfgOpt
		node      Node
		want      *State
		wantNotes []Note
	}{
		{
			name: "weights as configured, dr by default, wrr by default",
			cfg: []cfgOpt{withService("web", "10.0.0.1:80",
				withBackend("10.0.1.5", 3), withBackend("10.0.1.6", 1), withBackend("10.0.1.7", 0))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), sched("wrr"),
				dests(dest("10.0.1.5:80", 3), dest("10.0.1.6:80", 1), dest("10.0.1.7:80", 0)))),
		},
		{
			name: "unset weight is 1",
			cfg:  []cfgOpt{withService("web", "10.0.0.1:80", withBackend("10.0.1.5", -1))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 1)))),
		},
		{
			name: "tunnel forwarding",
			cfg:  []cfgOpt{withService("web", "10.0.0.1:80", withForwarding("tunnel"), withBackend("10.0.1.5", 2))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 2, fwd(netops.ForwardTunnel))))),
		},
		{
			name: "nat forwarding",
			cfg:  []cfgOpt{withService("web", "10.0.0.1:80", withForwarding("nat"), withBackend("10.0.1.5:8080", 2))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:8080", 2, fwd(netops.ForwardNAT))))),
		},
		{
			name: "unknown forwarding is normalized to dr, unknown scheduler to wrr",
			cfg:  []cfgOpt{withService("web", "10.0.0.1:80", withForwarding("magic"), withScheduler("fastest"), withBackend("10.0.1.5", 2))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), sched("wrr"), dests(dest("10.0.1.5:80", 2)))),
		},
		{
			name: "sh flags map to SCHED1 and SCHED2",
			cfg:  []cfgOpt{withService("web", "10.0.0.1:80", withScheduler("sh"), withFlags("sh-fallback", "sh-port"), withBackend("10.0.1.5", 1))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), sched("sh"), flags(netops.FlagSched1|netops.FlagSched2),
				dests(dest("10.0.1.5:80", 1)))),
		},
		{
			name: "mh-port is SCHED2, mh-fallback is always set; a flag of another scheduler is dropped",
			cfg:  []cfgOpt{withService("web", "10.0.0.1:80", withScheduler("mh"), withFlags("mh-port", "sh-fallback"), withBackend("10.0.1.5", 1))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), sched("mh"), flags(netops.FlagSched1|netops.FlagSched2),
				dests(dest("10.0.1.5:80", 1)))),
		},
		{
			name: "tcp and udp give two virtual services on one VIP",
			cfg: []cfgOpt{withService("dns", "10.0.0.2:53", withProtocols("tcp", "udp"),
				withBackend("10.0.1.5", 1), withBackend("10.0.1.6", 2))},
			want: makeState(
				withVS("tcp 10.0.0.2:53", named("dns"), dests(dest("10.0.1.5:53", 1), dest("10.0.1.6:53", 2))),
				withVS("udp 10.0.0.2:53", named("dns"), dests(dest("10.0.1.5:53", 1), dest("10.0.1.6:53", 2)))),
		},
		{
			name: "several services, VIPs bound once, unnamed service labelled vip:port",
			cfg: []cfgOpt{
				withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 1)),
				withService("", "10.0.0.1:443", withBackend("10.0.1.5", 1)),
				withService("api", "10.0.0.3:8080", withBackend("10.0.1.6", 1)),
				withPool("10.0.0.9"), // in the pool but unused: not bound
			},
			want: makeState(
				withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 1))),
				withVS("tcp 10.0.0.1:443", named("10.0.0.1:443"), dests(dest("10.0.1.5:443", 1))),
				withVS("tcp 10.0.0.3:8080", named("api"), dests(dest("10.0.1.6:8080", 1)))),
		},
		{
			name: "all weights 0: service kept, VIP bound, noted",
			cfg:  []cfgOpt{withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 0))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 0)))),
			wantNotes: []Note{{Service: "web", Kind: "no-realservers",
				Message: "no destination has a non-zero weight: the VIP stays bound but the service has no realservers"}},
		},
		{
			name: "ipvsSysctls under net/ipv4/vs",
			cfg: []cfgOpt{withSysctl("expire_nodest_conn", 1), withSysctl("sloppy_tcp", 1), withSysctl("conntrack", 0),
				withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 1))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 1))),
				withSysctlValue("net/ipv4/vs/expire_nodest_conn", "1"),
				withSysctlValue("net/ipv4/vs/sloppy_tcp", "1"),
				withSysctlValue("net/ipv4/vs/conntrack", "0")),
		},
		{
			name: "colocated forces conntrack=1 over the configured value",
			cfg: []cfgOpt{withColocated(), withSysctl("conntrack", 0),
				withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 1))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 1))),
				withSysctlValue("net/ipv4/vs/conntrack", "1")),
		},
		{
			name: "colocated without ipvsSysctls still sets conntrack=1",
			cfg:  []cfgOpt{withColocated(), withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 1))},
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 1))),
				withSysctlValue("net/ipv4/vs/conntrack", "1")),
		},
		{
			name: "vipInterface lo",
			cfg:  []cfgOpt{withVIPInterface("lo"), withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 1))},
			want: makeState(withDevice("lo"), withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.0.1.5:80", 1)))),
		},
		{
			name: "realserver role: no IPVS services and no VIPs",
			cfg:  []cfgOpt{withRole("realserver"), withSysctl("sloppy_tcp", 1), withService("web", "10.0.0.1:80", withBackend("10.0.1.5", 1))},
			node: Node{Name: "director-1", Role: "realserver"},
			want: makeState(withSysctlValue("net/ipv4/vs/sloppy_tcp", "1")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := makeConfig(t, tt.cfg...)
			node := tt.node
			if node.Name == "" {
				node = director
			}
			got, notes := Desired(cfg, nil, node)
			if d := cmp.Diff(tt.want, got, cmpOpts); d != "" {
				t.Errorf("Desired (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantNotes, notes, cmpOpts); d != "" {
				t.Errorf("notes (-want +got):\n%s", d)
			}
		})
	}
}

// kubeNodes is a cluster with one node of every kind, each running pods of web/http.
func kubeNodes(web kube.ServiceRef) []snapOpt {
	return []snapOpt{
		withNode("n1", "10.1.0.1"), withPods(web, "n1", 3, 0),
		withNode("n2", "10.1.0.2"),                            // eligible, no pods: weight 0
		withNode("n3", "10.1.0.3"), withPods(web, "n3", 2, 5), // unready pods do not count
		withNode("notready", "10.1.0.4", notReady()), withPods(web, "notready", 4, 0),
		withNode("cordoned", "10.1.0.5", cordoned()), withPods(web, "cordoned", 4, 0),
		withNode("unselected", "10.1.0.6", unselected()), withPods(web, "unselected", 4, 0),
		withNode("noaddr", "10.1.0.7", noAddress()), withPods(web, "noaddr", 4, 0),
		withNode("director-1", "10.1.0.8"), withPods(web, "director-1", 4, 0),
	}
}

func TestDesiredKubernetes(t *testing.T) {
	web := ref("default", "web", "http")
	kubeSvc := withService("web", "10.0.0.1:80", withKube("default", "web", "http"))
	tests := []struct {
		name      string
		cfg       []cfgOpt
		snap      *kube.Snapshot
		want      *State
		wantNotes []Note
	}{
		{
			name: "eligible nodes weighted by ready endpoints; others never, whatever their pods",
			cfg:  []cfgOpt{withKubernetes(false), kubeSvc},
			snap: makeSnapshot(kubeNodes(web)...),
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"),
				dests(dest("10.1.0.1:80", 3), dest("10.1.0.2:80", 0), dest("10.1.0.3:80", 2)))),
		},
		{
			name: "includeCordoned keeps cordoned nodes",
			cfg:  []cfgOpt{withKubernetes(true), kubeSvc},
			snap: makeSnapshot(kubeNodes(web)...),
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"),
				dests(dest("10.1.0.1:80", 3), dest("10.1.0.2:80", 0), dest("10.1.0.3:80", 2), dest("10.1.0.5:80", 4)))),
		},
		{
			name: "the director's own node is never a destination, even in colocated mode",
			cfg:  []cfgOpt{withKubernetes(false), withColocated(), kubeSvc},
			snap: makeSnapshot(withNode("director-1", "10.1.0.8"), withPods(web, "director-1", 4, 0),
				withNode("n1", "10.1.0.1"), withPods(web, "n1", 1, 0)),
			want: makeState(withSysctlValue("net/ipv4/vs/conntrack", "1"),
				withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.1.0.1:80", 1)))),
		},
		{
			name: "a node with only unready pods is at weight 0 and the service is noted",
			cfg:  []cfgOpt{withKubernetes(false), kubeSvc},
			snap: makeSnapshot(withNode("n1", "10.1.0.1"), withPods(web, "n1", 0, 3)),
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.1.0.1:80", 0)))),
			wantNotes: []Note{{Service: "web", Kind: "no-realservers",
				Message: "no destination has a non-zero weight: the VIP stays bound but the service has no realservers"}},
		},
		{
			// A snapshot lists every target its watches follow (with a status, endpoints or
			// not): a missing one is a target a reload just added, not synced yet.
			name: "target unknown to the snapshot: kept, so Diff leaves its destinations",
			cfg:  []cfgOpt{withKubernetes(false), kubeSvc},
			snap: makeSnapshot(withNode("n1", "10.1.0.1"), withNode("n2", "10.1.0.2")),
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"), func(v *VirtualService) { v.Keep = true })),
		},
		{
			name: "no snapshot: service without destinations, VIP bound",
			cfg:  []cfgOpt{withKubernetes(false), kubeSvc},
			snap: nil,
			want: makeState(withVS("tcp 10.0.0.1:80", named("web"))),
			wantNotes: []Note{{Service: "web", Kind: "no-realservers",
				Message: "no destination has a non-zero weight: the VIP stays bound but the service has no realservers"}},
		},
		{
			name: "scheduler, flags, forwarding and protocols of the service apply to nodes",
			cfg: []cfgOpt{withKubernetes(false), withService("web", "10.0.0.1:80", withKube("default", "web", "http"),
				withProtocols("tcp", "udp"), withScheduler("mh"), withFlags("mh-port"), withForwarding("tunnel"))},
			snap: makeSnapshot(withNode("n1", "10.1.0.1"), withPods(web, "n1", 2, 0)),
			want: makeState(
				withVS("tcp 10.0.0.1:80", named("web"), sched("mh"), flags(netops.FlagSched1|netops.FlagSched2), dests(dest("10.1.0.1:80", 2, fwd(netops.ForwardTunnel)))),
				withVS("udp 10.0.0.1:80", named("web"), sched("mh"), flags(netops.FlagSched1|netops.FlagSched2), dests(dest("10.1.0.1:80", 2, fwd(netops.ForwardTunnel))))),
		},
		{
			name: "static and Kubernetes services side by side",
			cfg: []cfgOpt{withKubernetes(false), kubeSvc,
				withService("db", "10.0.0.2:5432", withBackend("10.0.2.1", 1))},
			snap: makeSnapshot(withNode("n1", "10.1.0.1"), withPods(web, "n1", 1, 0)),
			want: makeState(
				withVS("tcp 10.0.0.1:80", named("web"), dests(dest("10.1.0.1:80", 1))),
				withVS("tcp 10.0.0.2:5432", named("db"), dests(dest("10.0.2.1:5432", 1)))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := makeConfig(t, tt.cfg...)
			got, notes := Desired(cfg, tt.snap, director)
			if d := cmp.Diff(tt.want, got, cmpOpts); d != "" {
				t.Errorf("Desired (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantNotes, notes, cmpOpts); d != "" {
				t.Errorf("notes (-want +got):\n%s", d)
			}
		})
	}
}

// A node running more ready endpoints than the kernel's maximum weight gets the maximum.
func TestDesiredKubernetesWeightCapped(t *testing.T) {
	web := ref("default", "web", "http")
	cfg := makeConfig(t, withKubernetes(false), withService("web", "10.0.0.1:80", withKube("default", "web", "http")))
	snap := makeSnapshot(withNode("n1", "10.1.0.1"), withPods(web, "n1", netops.MaxWeight+5, 0))
	got, _ := Desired(cfg, snap, director)
	if w := got.Services[skey("tcp 10.0.0.1:80")].Dests[dkey("10.1.0.1:80")].Weight; w != netops.MaxWeight {
		t.Errorf("weight = %d, want %d", w, netops.MaxWeight)
	}
}

// DesiredService gives the same virtual services Desired does, one per protocol.
func TestDesiredServiceMatchesDesired(t *testing.T) {
	web := ref("default", "web", "http")
	cfg := makeConfig(t, withKubernetes(false),
		withService("db", "10.0.0.2:5432", withBackend("10.0.2.1", 1), withProtocols("tcp", "udp")),
		withService("web", "10.0.0.1:80", withKube("default", "web", "http"), withThresholds(100, 10)))
	snap := makeSnapshot(kubeNodes(web)...)
	all, wantNotes := Desired(cfg, snap, director)
	var notes []Note
	got := map[netops.ServiceKey]*VirtualService{}
	for i := range cfg.Services {
		for _, vs := range DesiredService(cfg, i, snap, director, nil, &notes) {
			got[vs.ServiceKey] = vs
		}
	}
	if d := cmp.Diff(all.Services, got, cmpOpts); d != "" {
		t.Errorf("DesiredService vs Desired (-Desired +DesiredService):\n%s", d)
	}
	if d := cmp.Diff(wantNotes, notes, cmpOpts); d != "" {
		t.Errorf("notes (-Desired +DesiredService):\n%s", d)
	}
	// A nil notes pointer is allowed.
	if vs := DesiredService(cfg, 0, snap, director, nil, nil); len(vs) != 2 {
		t.Errorf("DesiredService with nil notes returned %d services, want 2", len(vs))
	}
}
