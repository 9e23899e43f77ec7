package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/kube"
)

// colocatedSnapshot: the director's own node holds one ready pod of web (and one unready), n1
// holds two; n2 is outside the selector and its pod counts for nothing.
func colocatedSnapshot(opts ...snapOpt) *kube.Snapshot {
	base := []snapOpt{
		withNode("director-1", "10.1.0.10"), withNode("n1", "10.1.0.1"), withNode("n2", "10.1.0.2", notSelected),
		withEndpoints(webRef,
			ready("10.244.0.5", 8080, "director-1"), unready("10.244.0.6", 8080, "director-1"),
			ready("10.244.1.5", 8080, "n1"), ready("10.244.1.6", 8080, "n1"),
			ready("10.244.2.5", 8080, "n2")),
		withChanged(webRef), withNodesChanged,
	}
	return makeSnapshot(append(base, opts...)...)
}

// kubeProxyNat is a foreign part of the nat table, as kube-proxy leaves it.
const kubeProxyNat = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SVC-NPX46M4PTMTKRN6Y -p tcp -j DNAT --to-destination 10.1.0.1:6443
COMMIT
`

// foreignLines returns the lines of an iptables-save text that do not mention RAVEL.
func foreignLines(save string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(save, "\n") {
		if !strings.Contains(l, "RAVEL") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestDirectorColocated: a colocated director sends its own pods their share (local ready /
// all eligible ready) with a statistic rule before IPVS, is never an IPVS destination itself,
// and sets net/ipv4/vs/conntrack=1. An isolated director writes no ravel chain at all.
func TestDirectorColocated(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		snap       *kube.Snapshot
		wantChains string
		wantIPVS   string
		wantCT     string
	}{
		{
			name:   "colocated, one of three ready pods local",
			config: "director-colocated.yaml",
			snap:   colocatedSnapshot(),
			wantChains: `*nat
:RAVEL - [0:0]
:RAVEL-MASQ - [0:0]
:RAVEL-POSTROUTING - [0:0]
:RAVEL-SVC-L6YVRQ6ZPLBJ - [0:0]
-A PREROUTING -j RAVEL
-A OUTPUT -j RAVEL
-A POSTROUTING -j RAVEL-POSTROUTING
-A RAVEL -d 10.54.213.247/32 -p tcp -m comment --comment web -m tcp --dport 80 -m statistic --mode random --probability 0.33333333349 -j RAVEL-SVC-L6YVRQ6ZPLBJ
-A RAVEL-MASQ -j MARK --set-xmark 0x2000/0x2000
-A RAVEL-POSTROUTING -m mark ! --mark 0x2000/0x2000 -j RETURN
-A RAVEL-POSTROUTING -j MARK --set-xmark 0x2000/0x0
-A RAVEL-POSTROUTING -j MASQUERADE --random-fully
-A RAVEL-SVC-L6YVRQ6ZPLBJ -s 10.244.0.5/32 -j RAVEL-MASQ
-A RAVEL-SVC-L6YVRQ6ZPLBJ -p tcp -j DNAT --to-destination 10.244.0.5:8080
COMMIT
`,
			wantIPVS: "tcp 10.54.213.247:80 wrr flags=0x0\n  -> 10.1.0.1:80 dr w=2 x=0 y=0\n",
			wantCT:   "net/ipv4/vs/conntrack = 1\n",
		},
		{
			name:   "colocated, every ready pod local",
			config: "director-colocated.yaml",
			snap: colocatedSnapshot(withEndpoints(webRef,
				ready("10.244.0.5", 8080, "director-1"), ready("10.244.0.6", 8080, "director-1"))),
			wantChains: `*nat
:RAVEL - [0:0]
:RAVEL-MASQ - [0:0]
:RAVEL-POSTROUTING - [0:0]
:RAVEL-SVC-L6YVRQ6ZPLBJ - [0:0]
-A PREROUTING -j RAVEL
-A OUTPUT -j RAVEL
-A POSTROUTING -j RAVEL-POSTROUTING
-A RAVEL -d 10.54.213.247/32 -p tcp -m comment --comment web -m tcp --dport 80 -j RAVEL-SVC-L6YVRQ6ZPLBJ
-A RAVEL-MASQ -j MARK --set-xmark 0x2000/0x2000
-A RAVEL-POSTROUTING -m mark ! --mark 0x2000/0x2000 -j RETURN
-A RAVEL-POSTROUTING -j MARK --set-xmark 0x2000/0x0
-A RAVEL-POSTROUTING -j MASQUERADE --random-fully
-A RAVEL-SVC-L6YVRQ6ZPLBJ -s 10.244.0.5/32 -j RAVEL-MASQ
-A RAVEL-SVC-L6YVRQ6ZPLBJ -s 10.244.0.6/32 -j RAVEL-MASQ
-A RAVEL-SVC-L6YVRQ6ZPLBJ -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.0.5:8080
-A RAVEL-SVC-L6YVRQ6ZPLBJ -p tcp -j DNAT --to-destination 10.244.0.6:8080
COMMIT
`,
			wantIPVS: "tcp 10.54.213.247:80 wrr flags=0x0\n  -> 10.1.0.1:80 dr w=0 x=0 y=0\n",
			wantCT:   "net/ipv4/vs/conntrack = 1\n",
		},
		{
			name:   "colocated, no local pod",
			config: "director-colocated.yaml",
			snap: colocatedSnapshot(withEndpoints(webRef,
				ready("10.244.1.5", 8080, "n1"))),
			// The top chain stays, empty, with its jumps: nothing is DNATed locally.
			wantChains: "*nat\n:RAVEL - [0:0]\n-A PREROUTING -j RAVEL\n-A OUTPUT -j RAVEL\nCOMMIT\n",
			wantIPVS:   "tcp 10.54.213.247:80 wrr flags=0x0\n  -> 10.1.0.1:80 dr w=1 x=0 y=0\n",
			wantCT:     "net/ipv4/vs/conntrack = 1\n",
		},
		{
			name:       "isolated, with local pods",
			config:     "director-kube.yaml",
			snap:       colocatedSnapshot(),
			wantChains: "*nat\nCOMMIT\n",
			wantIPVS:   "tcp 10.54.213.247:80 wrr flags=0x0\n  -> 10.1.0.1:80 dr w=2 x=0 y=0\n",
			wantCT:     "net/ipv4/vs/conntrack = 0\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes()
			must(t, f.tables.Restore(kubeProxyNat))
			foreign := f.tables.Save()
			d, _, m := newTestDirector(t, loadConfig(t, tt.config), f, nil)
			d.SetColocated(f.tables)
			d.OnSnapshot(tt.snap)

			if diff := cmp.Diff(tt.wantChains, f.ownedChains(t)); diff != "" {
				t.Errorf("ravel chains (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantIPVS, f.ipvs.Dump()); diff != "" {
				t.Errorf("IPVS (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCT, sysctlLines(f.sysctl.Dump(), "net/ipv4/vs/conntrack")); diff != "" {
				t.Errorf("sysctl (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(foreign, foreignLines(f.tables.Save())); diff != "" {
				t.Errorf("kube-proxy's rules changed (-before +after):\n%s", diff)
			}
			if got := value(t, m.ApplyErrors); got != 0 {
				t.Errorf("ravel_apply_errors_total = %v, want 0", got)
			}

			// Steady state: no further batch.
			restores := f.tables.Calls("restore")
			d.OnSnapshot(steady(tt.snap))
			d.FullSync()
			if got := f.tables.Calls("restore"); got != restores {
				t.Errorf("unchanged snapshot wrote %d more iptables batches", got-restores)
			}
		})
	}
}

// TestDirectorColocatedEndpointChange: an endpoint change on the director's node rewrites the
// local chain in one batch, through the partial path.
func TestDirectorColocatedEndpointChange(t *testing.T) {
	f := newFakes()
	d, _, m := newTestDirector(t, loadConfig(t, "director-colocated.yaml"), f, nil)
	d.SetColocated(f.tables)
	d.OnSnapshot(colocatedSnapshot())
	batches := len(f.tables.Batches())
	writes := value(t, m.ChainWrites)

	// A second local pod becomes ready: the local share goes to 2/4.
	d.OnSnapshot(colocatedSnapshot(withEndpoints(webRef,
		ready("10.244.0.5", 8080, "director-1"), ready("10.244.0.6", 8080, "director-1"),
		ready("10.244.1.5", 8080, "n1"), ready("10.244.1.6", 8080, "n1")),
		func(s *kube.Snapshot) { s.NodesChanged = false }))
	if got := len(f.tables.Batches()) - batches; got != 1 {
		t.Fatalf("%d batches for one endpoint change, want 1", got)
	}
	if got := value(t, m.ChainWrites) - writes; got != 1 {
		t.Errorf("ravel_iptables_batches_total grew by %v, want 1", got)
	}
	want := `*nat
:RAVEL - [0:0]
:RAVEL-MASQ - [0:0]
:RAVEL-POSTROUTING - [0:0]
:RAVEL-SVC-L6YVRQ6ZPLBJ - [0:0]
-A PREROUTING -j RAVEL
-A OUTPUT -j RAVEL
-A POSTROUTING -j RAVEL-POSTROUTING
-A RAVEL -d 10.54.213.247/32 -p tcp -m comment --comment web -m tcp --dport 80 -m statistic --mode random --probability 0.50000000000 -j RAVEL-SVC-L6YVRQ6ZPLBJ
-A RAVEL-MASQ -j MARK --set-xmark 0x2000/0x2000
-A RAVEL-POSTROUTING -m mark ! --mark 0x2000/0x2000 -j RETURN
-A RAVEL-POSTROUTING -j MARK --set-xmark 0x2000/0x0
-A RAVEL-POSTROUTING -j MASQUERADE --random-fully
-A RAVEL-SVC-L6YVRQ6ZPLBJ -s 10.244.0.5/32 -j RAVEL-MASQ
-A RAVEL-SVC-L6YVRQ6ZPLBJ -s 10.244.0.6/32 -j RAVEL-MASQ
-A RAVEL-SVC-L6YVRQ6ZPLBJ -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.0.5:8080
-A RAVEL-SVC-L6YVRQ6ZPLBJ -p tcp -j DNAT --to-destination 10.244.0.6:8080
COMMIT
`
	if diff := cmp.Diff(want, f.ownedChains(t)); diff != "" {
		t.Errorf("ravel chains (-want +got):\n%s", diff)
	}
}

// TestDirectorIsolatedRemovesStaleChains: a director restarted from colocated to isolated must
// stop DNATing to its own pods: the chains the colocated run left are removed.
func TestDirectorIsolatedRemovesStaleChains(t *testing.T) {
	f := newFakes()
	must(t, f.tables.Restore(kubeProxyNat))
	foreign := f.tables.Save()
	colo, _, _ := newTestDirector(t, loadConfig(t, "director-colocated.yaml"), f, nil)
	colo.SetColocated(f.tables)
	colo.OnSnapshot(colocatedSnapshot())
	if !strings.Contains(f.ownedChains(t), "DNAT") {
		t.Fatal("colocated director wrote no DNAT rule")
	}

	iso, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
	iso.SetColocated(f.tables)
	iso.OnSnapshot(colocatedSnapshot())
	if diff := cmp.Diff("*nat\nCOMMIT\n", f.ownedChains(t)); diff != "" {
		t.Errorf("ravel chains after the isolated start (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(foreign, f.tables.Save()); diff != "" {
		t.Errorf("nat table (-want +got):\n%s", diff)
	}
}

// TestDirectorColocatedChainFailure: a refused iptables batch is counted and forces a full
// resync, which writes the chains.
func TestDirectorColocatedChainFailure(t *testing.T) {
	f := newFakes()
	d, _, m := newTestDirector(t, loadConfig(t, "director-colocated.yaml"), f, nil)
	d.SetColocated(f.tables)
	f.tables.FailNext("restore", errInjected)
	d.OnSnapshot(colocatedSnapshot())
	if got := value(t, m.ApplyErrors); got != 1 {
		t.Errorf("ravel_apply_errors_total = %v, want 1", got)
	}
	if s, _ := f.tables.Dump(context.Background()); strings.Contains(s, "RAVEL") {
		t.Fatalf("a failed batch left chains:\n%s", s)
	}
	services := f.ipvs.Calls("Services")
	d.OnSnapshot(steady(colocatedSnapshot()))
	if f.ipvs.Calls("Services") != services+1 {
		t.Errorf("the cycle after the failed batch was not a full resync")
	}
	if !strings.Contains(f.ownedChains(t), "--probability 0.33333333349") {
		t.Errorf("chains not repaired:\n%s", f.ownedChains(t))
	}
}
