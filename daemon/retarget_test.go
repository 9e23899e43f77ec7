package daemon

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/kube"
)

// retarget returns testdata/name with web pointed at the Kubernetes service "other".
func retarget(t *testing.T, name string) *config.Config {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	next, err := config.Parse(name, []byte(strings.Replace(string(data), "service: nginx", "service: other", 1)))
	if err != nil {
		t.Fatal(err)
	}
	return next
}

var otherRef = kube.ServiceRef{Namespace: "web", Service: "other", PortName: "http", Family: family.IPv4}

// TestDirectorRetargetKeepsDestinations (issue 11, item 4): a reload that points web at
// another Kubernetes service keeps web's destinations while the snapshots come from watches
// that do not follow the new target, and takes the new target's once one does.
func TestDirectorRetargetKeepsDestinations(t *testing.T) {
	f := newFakes()
	d, _, _ := newTestDirector(t, loadConfig(t, "director-kube.yaml"), f, nil)
	d.setSnapshot(kubeSnapshot())
	d.FullSync()
	if got := f.ipvs.Dump(); got != kubeIPVS {
		t.Fatalf("before the reload:\n%s", got)
	}
	d.setConfig(retarget(t, "director-kube.yaml"))
	d.FullSync()
	d.OnSnapshot(kubeSnapshot(withChanged(webRef))) // the old watches go on publishing
	if got := f.ipvs.Dump(); got != kubeIPVS {
		t.Errorf("while the new target is unknown, web changed:\n%s\nwant:\n%s", got, kubeIPVS)
	}
	d.OnSnapshot(kubeSnapshot(withEndpoints(otherRef, ready("10.244.2.8", 8080, "n2")), withNodesChanged))
	want := "tcp 10.54.213.247:80 wrr flags=0x0\n  -> 10.1.0.1:80 dr w=0 x=0 y=0\n  -> 10.1.0.2:80 dr w=1 x=0 y=0\n  -> 10.1.0.3:80 dr w=0 x=0 y=0\n"
	if got := f.ipvs.Dump(); got != want {
		t.Errorf("once the new target is known:\n%s\nwant:\n%s", got, want)
	}
}

// TestRealserverRetargetKeepsRules: the realserver's DNAT rules for a retargeted service stay
// until a snapshot knows the new target.
func TestRealserverRetargetKeepsRules(t *testing.T) {
	f := newRealserverFakes(t, "eth0")
	r := newTestRealserver(t, "realserver.yaml", f, realserverSnapshot())
	must(t, r.Sync(context.Background()))
	before := f.ownedChains(t)
	r.Reload(retarget(t, "realserver.yaml"))
	must(t, r.Sync(context.Background()))
	if got := f.ownedChains(t); got != before {
		t.Errorf("a retarget whose watch has not synced changed the rules:\n%s\nwant:\n%s", got, before)
	}
	r.snaps.Set(realserverSnapshot(withEndpoints(otherRef, ready("10.244.1.77", 8080, "rs-1"))))
	must(t, r.Sync(context.Background()))
	got := f.ownedChains(t)
	if !strings.Contains(got, "10.244.1.77:8080") || strings.Contains(got, "10.244.1.5:8080") {
		t.Errorf("once the new target is known, want DNAT to its pod only:\n%s", got)
	}
}
