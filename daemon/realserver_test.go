package daemon

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/kube"
)

// realserverSnapshot: rs-1 (this node) holds two ready pods of web, one unready, and one ready
// pod of api; rs-2 holds one ready pod of each, which rs-1 must never DNAT to.
func realserverSnapshot(opts ...snapOpt) *kube.Snapshot {
	base := []snapOpt{
		withNode("rs-1", "10.1.0.1"), withNode("rs-2", "10.1.0.2"),
		withEndpoints(webRef,
			ready("10.244.1.5", 8080, "rs-1"), ready("10.244.1.6", 8080, "rs-1"), unready("10.244.1.7", 8080, "rs-1"),
			ready("10.244.2.5", 8080, "rs-2")),
		withEndpoints(apiRef, ready("10.244.1.9", 8443, "rs-1"), ready("10.244.2.9", 8443, "rs-2")),
		withChanged(webRef, apiRef), withNodesChanged,
	}
	return makeSnapshot(append(base, opts...)...)
}

// realserverChains is what rs-1 renders for realserverSnapshot: its own ready pods only, each
// service taking all the VIP traffic that reaches the node.
const realserverChains = `*nat
:RAVEL - [0:0]
:RAVEL-MASQ - [0:0]
:RAVEL-POSTROUTING - [0:0]
:RAVEL-SVC-L6YVRQ6ZPLBJ - [0:0]
:RAVEL-SVC-PYE7UGWM76MH - [0:0]
-A PREROUTING -j RAVEL
-A OUTPUT -j RAVEL
-A POSTROUTING -j RAVEL-POSTROUTING
-A RAVEL -d 10.54.213.247/32 -p tcp -m comment --comment web -m tcp --dport 80 -j RAVEL-SVC-L6YVRQ6ZPLBJ
-A RAVEL -d 10.54.213.248/32 -p tcp -m comment --comment api -m tcp --dport 443 -j RAVEL-SVC-PYE7UGWM76MH
-A RAVEL-MASQ -j MARK --set-xmark 0x2000/0x2000
-A RAVEL-POSTROUTING -m mark ! --mark 0x2000/0x2000 -j RETURN
-A RAVEL-POSTROUTING -j MARK --set-xmark 0x2000/0x0
-A RAVEL-POSTROUTING -j MASQUERADE --random-fully
-A RAVEL-SVC-L6YVRQ6ZPLBJ -s 10.244.1.5/32 -j RAVEL-MASQ
-A RAVEL-SVC-L6YVRQ6ZPLBJ -s 10.244.1.6/32 -j RAVEL-MASQ
-A RAVEL-SVC-L6YVRQ6ZPLBJ -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.1.5:8080
-A RAVEL-SVC-L6YVRQ6ZPLBJ -p tcp -j DNAT --to-destination 10.244.1.6:8080
-A RAVEL-SVC-PYE7UGWM76MH -s 10.244.1.9/32 -j RAVEL-MASQ
-A RAVEL-SVC-PYE7UGWM76MH -p tcp -j DNAT --to-destination 10.244.1.9:8443
COMMIT
`

// ipipLinks and ipipSysctls are what realserver.yaml leaves on newRealserverFakes(t, "eth0"):
// both VIPs on the dummy device ravel0, tunl0 up for the IPIP service, ARP kept quiet on all and
// eth0, and rp_filter lowered for the decapsulated packets.
const (
	ipipLinks = "eth0 veth up\n  10.1.0.1/24\n" +
		"lo device up\n  127.0.0.1/8\n" +
		"ravel0 dummy up\n  10.54.213.247/32\n  10.54.213.248/32\n" +
		"tunl0 ipip up\n"
	ipipSysctls = "net/ipv4/conf/all/accept_local = 0\n" +
		"net/ipv4/conf/all/arp_announce = 2\n" +
		"net/ipv4/conf/all/arp_ignore = 1\n" +
		"net/ipv4/conf/all/rp_filter = 0\n" +
		"net/ipv4/conf/eth0/accept_local = 0\n" +
		"net/ipv4/conf/eth0/arp_announce = 2\n" +
		"net/ipv4/conf/eth0/arp_ignore = 1\n" +
		"net/ipv4/conf/eth0/rp_filter = 0\n" +
		"net/ipv4/conf/tunl0/accept_local = 0\n" +
		"net/ipv4/conf/tunl0/arp_announce = 0\n" +
		"net/ipv4/conf/tunl0/arp_ignore = 0\n" +
		"net/ipv4/conf/tunl0/rp_filter = 0\n"
)

// emptyChains is the top chain with its jumps and nothing to DNAT.
const emptyChains = "*nat\n:RAVEL - [0:0]\n-A PREROUTING -j RAVEL\n-A OUTPUT -j RAVEL\nCOMMIT\n"

// newRealserverFakes returns fakes of a node whose primary interface is iface (with its sysctl
// keys), holding kube-proxy's nat rules and loopback's usual address.
func newRealserverFakes(t *testing.T, iface string) *fakes {
	t.Helper()
	f := newFakes()
	f.links.AddDevice(iface, "veth", true, netip.MustParsePrefix("10.1.0.1/24"))
	f.sysctl.AddInterface(iface)
	f.links.AddDevice("lo", "device", true, netip.MustParsePrefix("127.0.0.1/8"))
	must(t, f.tables.Restore(kubeProxyNat))
	f.resetCalls()
	return f
}

func newTestRealserver(t *testing.T, config string, f *fakes, snap *kube.Snapshot) *Realserver {
	t.Helper()
	cfg := loadConfig(t, config)
	var latest *Latest
	if cfg.Kubernetes != nil {
		latest = NewLatest()
		if snap != nil {
			latest.Set(snap)
		}
	}
	return NewRealserver(cfg, nodeOf(cfg), f.kernelLinks(), f.sysctl, f.tables, latest, discard, NewMetrics(nil))
}

// TestRealserverSync: VIPs on node.vipInterface, ARP kept quiet on "all" and node.interface,
// tunl0 and its rp_filter when a service tunnels, and DNAT chains to this node's own ready pods
// only; kube-proxy's rules stay byte for byte; a second sync changes nothing.
func TestRealserverSync(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		iface      string
		snap       *kube.Snapshot
		wantLinks  string
		wantSysctl string // keys of all, the interface and tunl0 that ravel sets
		wantChains string
	}{
		{
			name:       "dummy device, DR and IPIP",
			config:     "realserver.yaml",
			iface:      "eth0",
			snap:       realserverSnapshot(),
			wantLinks:  ipipLinks,
			wantSysctl: ipipSysctls,
			wantChains: realserverChains,
		},
		{
			name:   "loopback, static backends",
			config: "realserver-lo.yaml",
			iface:  "eth1",
			wantLinks: "eth1 veth up\n  10.1.0.1/24\n" +
				"lo device up\n  10.54.213.247/32\n  127.0.0.1/8\n",
			wantSysctl: "net/ipv4/conf/all/accept_local = 0\n" +
				"net/ipv4/conf/all/arp_announce = 2\n" +
				"net/ipv4/conf/all/arp_ignore = 1\n" +
				"net/ipv4/conf/all/rp_filter = 1\n" +
				"net/ipv4/conf/eth1/accept_local = 0\n" +
				"net/ipv4/conf/eth1/arp_announce = 2\n" +
				"net/ipv4/conf/eth1/arp_ignore = 1\n" +
				"net/ipv4/conf/eth1/rp_filter = 0\n",
			wantChains: emptyChains,
		},
		{
			name:       "node outside the selector",
			config:     "realserver.yaml",
			iface:      "eth0",
			snap:       realserverSnapshot(withNode("rs-1", "10.1.0.1", notSelected)),
			wantLinks:  ipipLinks,
			wantSysctl: ipipSysctls,
			// No service chain and no DNAT: only the empty top chain.
			wantChains: emptyChains,
		},
		{
			name:       "not ready",
			config:     "realserver.yaml",
			iface:      "eth0",
			snap:       realserverSnapshot(withNode("rs-1", "10.1.0.1", notReady)),
			wantLinks:  ipipLinks,
			wantSysctl: ipipSysctls,
			wantChains: emptyChains,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRealserverFakes(t, tt.iface)
			// A hardened host: strict reverse-path filtering through conf/all. With IPIP
			// the realserver must lower it (the kernel takes the larger of all and tunl0,
			// and drops decapsulated packets on an address-less tunl0 in loose mode too);
			// without IPIP it leaves it alone.
			must(t, f.sysctl.Set("net/ipv4/conf/all/rp_filter", "1"))
			f.resetCalls()
			foreign := f.tables.Save()
			r := newTestRealserver(t, tt.config, f, tt.snap)
			if err := r.Sync(context.Background()); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if diff := cmp.Diff(tt.wantLinks, f.links.Dump()); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
			keys := []string{"net/ipv4/conf/all/", "net/ipv4/conf/" + tt.iface + "/", "net/ipv4/conf/tunl0/"}
			if diff := cmp.Diff(tt.wantSysctl, sysctlLines(f.sysctl.Dump(), keys...)); diff != "" {
				t.Errorf("sysctls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantChains, f.ownedChains(t)); diff != "" {
				t.Errorf("chains (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(foreign, foreignLines(f.tables.Save())); diff != "" {
				t.Errorf("kube-proxy's rules changed (-before +after):\n%s", diff)
			}
			if got := f.ipvs.CallCounts(); len(got) != 0 {
				t.Errorf("a realserver touched IPVS: %v", got)
			}

			f.resetCalls()
			restores := f.tables.Calls("restore")
			if err := r.Sync(context.Background()); err != nil {
				t.Fatalf("second Sync: %v", err)
			}
			if got := f.mutations(); len(got) != 0 {
				t.Errorf("second Sync changed the kernel:\n%q", got)
			}
			if got := f.tables.Calls("restore"); got != restores {
				t.Errorf("second Sync wrote %d iptables batches", got-restores)
			}
		})
	}
}

// TestRealserverEndpointChange: a change of this node's endpoints rewrites only that service's
// chain, in one batch; a change on another node writes nothing.
func TestRealserverEndpointChange(t *testing.T) {
	f := newRealserverFakes(t, "eth0")
	r := newTestRealserver(t, "realserver.yaml", f, realserverSnapshot())
	must(t, r.Sync(context.Background()))
	batches := len(f.tables.Batches())

	// rs-2 gains a pod: nothing changes here.
	r.snaps.Set(realserverSnapshot(withEndpoints(webRef,
		ready("10.244.1.5", 8080, "rs-1"), ready("10.244.1.6", 8080, "rs-1"),
		ready("10.244.2.5", 8080, "rs-2"), ready("10.244.2.6", 8080, "rs-2"))))
	must(t, r.Sync(context.Background()))
	if got := len(f.tables.Batches()) - batches; got != 0 {
		t.Fatalf("a change on another node wrote %d batches", got)
	}

	// One of rs-1's web pods goes away.
	r.snaps.Set(realserverSnapshot(withEndpoints(webRef, ready("10.244.1.6", 8080, "rs-1"), ready("10.244.2.5", 8080, "rs-2"))))
	must(t, r.Sync(context.Background()))
	all := f.tables.Batches()
	if got := len(all) - batches; got != 1 {
		t.Fatalf("%d batches, want 1", got)
	}
	want := "*nat\n" +
		":RAVEL-SVC-L6YVRQ6ZPLBJ - [0:0]\n" +
		"-A RAVEL-SVC-L6YVRQ6ZPLBJ -s 10.244.1.6/32 -j RAVEL-MASQ\n" +
		"-A RAVEL-SVC-L6YVRQ6ZPLBJ -p tcp -j DNAT --to-destination 10.244.1.6:8080\n" +
		"COMMIT\n"
	if diff := cmp.Diff(want, all[len(all)-1]); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
}

// TestRealserverCleanup removes the chains and unbinds the VIPs, and nothing else.
func TestRealserverCleanup(t *testing.T) {
	for _, config := range []string{"realserver.yaml", "realserver-lo.yaml"} {
		t.Run(config, func(t *testing.T) {
			iface := "eth0"
			if config == "realserver-lo.yaml" {
				iface = "eth1"
			}
			f := newRealserverFakes(t, iface)
			before := f.tables.Save()
			r := newTestRealserver(t, config, f, realserverSnapshot())
			must(t, r.Sync(context.Background()))
			if err := r.Cleanup(context.Background()); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			if diff := cmp.Diff(before, f.tables.Save()); diff != "" {
				t.Errorf("nat table after cleanup (-before +after):\n%s", diff)
			}
			links := f.links.Dump()
			for _, vip := range []string{"10.54.213.247/32", "10.54.213.248/32"} {
				if strings.Contains(links, vip) {
					t.Errorf("%s still bound after cleanup:\n%s", vip, links)
				}
			}
			if !strings.Contains(links, "127.0.0.1/8") || !strings.Contains(links, "10.1.0.1/24") {
				t.Errorf("cleanup removed a foreign address:\n%s", links)
			}
			// Cleaning up twice is harmless.
			f.resetCalls()
			if err := r.Cleanup(context.Background()); err != nil {
				t.Errorf("second Cleanup: %v", err)
			}
			if got := f.mutations(); len(got) != 0 {
				t.Errorf("second Cleanup changed the kernel:\n%q", got)
			}
		})
	}
}

// TestRealserverCleanupReportsEveryError: cleanup goes on after a failure and reports each one.
func TestRealserverCleanupReportsEveryError(t *testing.T) {
	errTables := errors.New("iptables-restore: line 3 failed")
	errUnbind := errors.New("netlink: operation not permitted")
	errList := errors.New("netlink: dump interrupted")
	tests := []struct {
		name    string
		inject  func(f *fakes)
		want    []error
		wantMsg []string
	}{
		{
			name: "chains and an address",
			inject: func(f *fakes) {
				f.tables.FailNext("restore", errTables)
				f.links.FailNext("DelAddr", errUnbind)
			},
			want:    []error{errTables, errUnbind},
			wantMsg: []string{"iptables cleanup", "unbinding VIPs", "10.54.213.247"},
		},
		{
			name: "listing the addresses",
			inject: func(f *fakes) {
				f.links.FailNext("Addrs", errList)
			},
			want:    []error{errList},
			wantMsg: []string{"unbinding VIPs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRealserverFakes(t, "eth0")
			r := newTestRealserver(t, "realserver.yaml", f, realserverSnapshot())
			must(t, r.Sync(context.Background()))
			tt.inject(f)
			err := r.Cleanup(context.Background())
			if err == nil {
				t.Fatal("Cleanup returned nil despite the failures")
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Cleanup error does not report %q:\n%v", w, err)
				}
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Cleanup error does not mention %q:\n%v", s, err)
				}
			}
			// What did not fail was still cleaned up, and a second cleanup finishes the job.
			must(t, r.Cleanup(context.Background()))
			if s := f.ownedChains(t); s != "*nat\nCOMMIT\n" {
				t.Errorf("chains left after the second cleanup:\n%s", s)
			}
			if strings.Contains(f.links.Dump(), "10.54.213.") {
				t.Errorf("VIPs left after the second cleanup:\n%s", f.links.Dump())
			}
		})
	}
}

// TestRealserverSyncReportsEveryError: a sync goes on past a failure and reports each one.
func TestRealserverSyncReportsEveryError(t *testing.T) {
	f := newRealserverFakes(t, "eth0")
	r := newTestRealserver(t, "realserver.yaml", f, realserverSnapshot())
	f.links.FailNext("EnsureIPIP", errInjected)
	errTables := errors.New("iptables-restore failed")
	f.tables.FailNext("restore", errTables)
	err := r.Sync(context.Background())
	for _, w := range []error{errInjected, errTables} {
		if !errors.Is(err, w) {
			t.Errorf("Sync error does not report %q: %v", w, err)
		}
	}
	// The VIPs were bound all the same.
	if !strings.Contains(f.links.Dump(), "10.54.213.247/32") {
		t.Errorf("a tunl0 failure kept the VIPs from being bound:\n%s", f.links.Dump())
	}
	must(t, r.Sync(context.Background()))
	if diff := cmp.Diff(realserverChains, f.ownedChains(t)); diff != "" {
		t.Errorf("chains after the retry (-want +got):\n%s", diff)
	}
}

// TestRealserverRun: with Kubernetes, nothing is programmed before the first snapshot; then
// every new snapshot is applied; cancelling returns nil and leaves the state (Cleanup is the
// role controller's job).
func TestRealserverRun(t *testing.T) {
	f := newRealserverFakes(t, "eth0")
	r := newTestRealserver(t, "realserver.yaml", f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	time.Sleep(100 * time.Millisecond) // time to misbehave
	if got := f.mutations(); len(got) != 0 {
		t.Fatalf("programmed before the first snapshot:\n%q", got)
	}
	r.snaps.Set(realserverSnapshot())
	waitFor(t, "chains", func() bool { s, _ := f.tables.Dump(ctx); return s == realserverChains })

	r.snaps.Set(realserverSnapshot(withEndpoints(apiRef)))
	waitFor(t, "api chain removed", func() bool {
		s, _ := f.tables.Dump(ctx)
		return strings.Contains(s, "RAVEL-SVC-L6YVRQ6ZPLBJ") && !strings.Contains(s, "RAVEL-SVC-PYE7UGWM76MH")
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	if !strings.Contains(f.links.Dump(), "10.54.213.247/32") {
		t.Errorf("Run's return unbound the VIPs:\n%s", f.links.Dump())
	}
}

// TestRealserverReload: a reload that moves the service to another VIP binds the new one and
// unbinds the old one (retired, still owned until the sync that removes it), leaving foreign
// addresses alone; a running role syncs as soon as the config arrives.
func TestRealserverReload(t *testing.T) {
	f := newRealserverFakes(t, "eth1")
	r := newTestRealserver(t, "realserver-lo.yaml", f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	bound := func(p string) bool { return strings.Contains(f.links.Dump(), p) }
	waitFor(t, "the first sync", func() bool { return bound("10.54.213.247/32") })

	data, err := os.ReadFile("testdata/realserver-lo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	next, err := config.Parse("next.yaml", []byte(strings.ReplaceAll(string(data), "10.54.213.247", "10.54.213.249")))
	if err != nil {
		t.Fatal(err)
	}
	r.Reload(next)
	waitFor(t, "the reload's sync", func() bool { return bound("10.54.213.249/32") && !bound("10.54.213.247/32") })
	if !bound("127.0.0.1/8") {
		t.Errorf("the reload removed a foreign address:\n%s", f.links.Dump())
	}
	r.mu.Lock()
	retired := len(r.retired)
	r.mu.Unlock()
	if retired != 0 {
		t.Errorf("%d VIPs still retired after a good sync, want 0", retired)
	}
}
