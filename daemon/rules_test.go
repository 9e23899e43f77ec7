package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/knftables"

	"github.com/ravel-lb/ravel/netops/nftables"
)

// TestRealserverNFTables: with rules.backend nftables the realserver serves from ravel's
// table, removes the iptables chains an earlier run left (once the table serves, and nothing
// of kube-proxy's), sends one partial transaction for an endpoint change, repairs a
// hand-deleted element on the resync and deletes its table on cleanup.
func TestRealserverNFTables(t *testing.T) {
	ctx := context.Background()
	f := newRealserverFakes(t, "eth0")
	// An earlier run with the iptables backend.
	must(t, newTestRealserver(t, "realserver.yaml", f, realserverSnapshot()).Sync(ctx))
	if !strings.Contains(f.ownedChains(t), "RAVEL-SVC-") {
		t.Fatal("the iptables run left no chains to remove")
	}

	// api has no ready pod on rs-1 any more: in-zone clients go to rs-2's.
	snap := realserverSnapshot(withEndpoints(apiRef, ready("10.244.2.9", 8443, "rs-2")))
	r := newTestRealserver(t, "realserver.yaml", f, snap)
	nft, fake := nftables.NewFake("")
	r.SetNFTables(nft, true)
	must(t, r.Sync(ctx))
	if got := f.ownedChains(t); got != "*nat\nCOMMIT\n" {
		t.Errorf("iptables chains left after the switch:\n%s", got)
	}
	save := f.tables.Save()
	for _, line := range strings.Split(strings.TrimSpace(kubeProxyNat), "\n") {
		if line != "COMMIT" && !strings.Contains(save, line) {
			t.Errorf("kube-proxy's %q lost", line)
		}
	}
	web := fake.Table.Maps["services4"].FindElement("10.54.213.247", "tcp", "80")
	if web == nil || !strings.HasPrefix(web.Value[0], "goto svc-") {
		t.Fatalf("web not served: %v\n%s", web, fake.Dump())
	}
	if api := fake.Table.Maps["zone4"].FindElement("10.54.213.248", "tcp", "443"); api == nil {
		t.Errorf("api, with no pod here, is not served in-zone:\n%s", fake.Dump())
	}
	if !strings.Contains(fake.Dump(), "dnat ip to 10.244.2.9:8443") {
		t.Errorf("in-zone api does not go to rs-2's pod:\n%s", fake.Dump())
	}
	if strings.Contains(fake.Dump(), "10.244.2.5") {
		t.Errorf("web, served here, also goes to rs-2's pod:\n%s", fake.Dump())
	}

	// One of rs-1's web pods goes away: one partial transaction.
	r.snaps.Set(realserverSnapshot(withEndpoints(webRef, ready("10.244.1.6", 8080, "rs-1")),
		withEndpoints(apiRef, ready("10.244.2.9", 8443, "rs-2"))))
	must(t, r.Sync(ctx))
	if got := testutil.ToFloat64(r.m.NFTTransactions.WithLabelValues("partial")); got != 1 {
		t.Errorf("%v partial transactions, want 1", got)
	}
	if strings.Contains(fake.Dump(), "10.244.1.5") {
		t.Errorf("the pod that went is still a target:\n%s", fake.Dump())
	}
	want := fake.Dump()

	// Someone deletes web's element; the resync sees it and puts it back.
	tx := fake.NewTransaction()
	tx.Delete(&knftables.Element{Map: "services4", Key: []string{"10.54.213.247", "tcp", "80"}})
	must(t, fake.Run(ctx, tx))
	r.resyncDue = true
	must(t, r.Sync(ctx))
	if got := testutil.ToFloat64(r.m.NFTDrift); got != 1 {
		t.Errorf("drift counted %v times, want 1", got)
	}
	if got := fake.Dump(); got != want {
		t.Errorf("not repaired:\n%s\nwant\n%s", got, want)
	}

	must(t, r.Cleanup(ctx))
	if d, _ := nft.Dump(ctx); d != "" {
		t.Errorf("table left after cleanup:\n%s", d)
	}
}

// TestRealserverBackToIPTables: back on iptables, the realserver removes the table an
// nftables run left, once its chains serve.
func TestRealserverBackToIPTables(t *testing.T) {
	ctx := context.Background()
	f := newRealserverFakes(t, "eth0")
	r := newTestRealserver(t, "realserver.yaml", f, realserverSnapshot())
	nft, fake := nftables.NewFake("")
	r.SetNFTables(nft, true)
	must(t, r.Sync(ctx))
	if fake.Table == nil {
		t.Fatal("nftables run made no table")
	}

	r = newTestRealserver(t, "realserver.yaml", f, realserverSnapshot())
	r.SetNFTables(nft, false)
	must(t, r.Sync(ctx))
	if fake.Table != nil {
		t.Errorf("table left after the switch to iptables:\n%s", fake.Dump())
	}
	if !strings.Contains(f.ownedChains(t), "RAVEL-SVC-") {
		t.Errorf("iptables does not serve:\n%s", f.ownedChains(t))
	}
}

// TestDirectorColocatedNFTables: a colocated director on nftables takes its own pods' share
// exactly (one local ready pod of three eligible: numbers 1 and 2 of `mod 3` fall through to
// IPVS), and an isolated one removes the table a colocated run left.
func TestDirectorColocatedNFTables(t *testing.T) {
	f := newFakes()
	d, _, _ := newTestDirector(t, loadConfig(t, "director-colocated.yaml"), f, nil)
	nft, fake := nftables.NewFake("")
	d.SetNFTables(nft, true)
	d.OnSnapshot(colocatedSnapshot())
	dump := fake.Dump()
	if !strings.Contains(dump, "numgen random mod 3 vmap { 0 : goto ep-") || strings.Contains(dump, " , 1 : goto") {
		t.Errorf("colocated share is not 1 of 3:\n%s", dump)
	}
	if !strings.Contains(dump, "dnat ip to 10.244.0.5:8080") || strings.Contains(dump, "10.244.1.5") {
		t.Errorf("the share goes elsewhere than the director's own pod:\n%s", dump)
	}
	if strings.Contains(dump, "add element inet ravel zone4") {
		t.Errorf("a director serves in-zone:\n%s", dump)
	}

	iso, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
	iso.SetNFTables(nft, true)
	iso.OnSnapshot(colocatedSnapshot())
	if fake.Table != nil {
		t.Errorf("isolated director left the colocated table:\n%s", fake.Dump())
	}
}

// TestRealserverOtherBackendCleanupFails: removing an earlier run's iptables chains fails
// (say ip6tables cannot save): the sync still succeeds and the node still says its rules
// are programmed (an error would make the director drain a node that serves), and the
// removal is tried again at the next sync.
func TestRealserverOtherBackendCleanupFails(t *testing.T) {
	ctx := context.Background()
	f := newRealserverFakes(t, "eth0")
	must(t, newTestRealserver(t, "realserver.yaml", f, realserverSnapshot()).Sync(ctx))
	r := newTestRealserver(t, "realserver.yaml", f, realserverSnapshot())
	nft, _ := nftables.NewFake("")
	r.SetNFTables(nft, true)
	nh := NewNodeHealth("rs-1")
	r.SetNodeHealth(nh)
	f.tables.FailNext("save", errors.New("iptables-save: can't initialize"))
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("sync failed for the other backend's cleanup: %v", err)
	}
	for _, s := range nh.View().Services {
		if !s.RulesProgrammed {
			t.Errorf("%v: rules not programmed after a failed cleanup of the other backend", s)
		}
	}
	if !strings.Contains(f.ownedChains(t), "RAVEL-SVC-") {
		t.Fatal("the failed cleanup removed the chains anyway")
	}
	must(t, r.Sync(ctx))
	if got := f.ownedChains(t); got != "*nat\nCOMMIT\n" {
		t.Errorf("the next sync did not retry the cleanup:\n%s", got)
	}
}

// TestIsolatedDirectorRemovesBothBackends: an isolated director removes what a colocated run
// left in either backend, whichever rules.backend it runs with now.
func TestIsolatedDirectorRemovesBothBackends(t *testing.T) {
	for _, useNFT := range []bool{false, true} {
		f := newFakes()
		nft, fake := nftables.NewFake("")
		colo, _, _ := newTestDirector(t, loadConfig(t, "director-colocated.yaml"), f, nil)
		colo.SetColocated(f.tables)
		colo.OnSnapshot(colocatedSnapshot())
		colo2, _, _ := newTestDirector(t, loadConfig(t, "director-colocated.yaml"), f, nil)
		colo2.SetNFTables(nft, true)
		colo2.OnSnapshot(colocatedSnapshot())
		if fake.Table == nil || !strings.Contains(f.ownedChains(t), "RAVEL-SVC-") {
			t.Fatal("the colocated runs left nothing to remove")
		}
		iso, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
		iso.SetColocated(f.tables)
		iso.SetNFTables(nft, useNFT)
		iso.OnSnapshot(colocatedSnapshot())
		if fake.Table != nil {
			t.Errorf("useNFT %v: the nftables table is left", useNFT)
		}
		if got := f.ownedChains(t); got != "*nat\nCOMMIT\n" {
			t.Errorf("useNFT %v: iptables chains left:\n%s", useNFT, got)
		}
	}
}

// TestIsolatedDirectorRemovesOnce: an isolated director removes a colocated run's rules once,
// not on every cycle (each removal is an iptables-save, and an nft transaction).
func TestIsolatedDirectorRemovesOnce(t *testing.T) {
	f := newFakes()
	iso, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
	iso.SetColocated(f.tables)
	iso.OnSnapshot(colocatedSnapshot())
	saves := f.tables.Calls("save")
	iso.OnSnapshot(steady(colocatedSnapshot()))
	iso.FullSync()
	if got := f.tables.Calls("save") - saves; got != 0 {
		t.Errorf("%d more iptables-save after the first removal, want 0", got)
	}
}
