package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/internal/kubeobj"
	"github.com/ravel-lb/ravel/kube"
	"github.com/ravel-lb/ravel/reconcile"
)

// TestDualStackPlanFromAPI: a dual-stack Service on a real kube-apiserver, behind an IPv4 and
// an IPv6 VIP, gives one plan with both services: the nodes' addresses of each family as
// destinations, weighted by the EndpointSlice of that family.
//
//	KAPI_BIN=$(hack/kapi/build.sh | tail -n1) RAVEL_REQUIRE_KAPI=1 go test ./daemon -run TestDualStackPlanFromAPI -v
func TestDualStackPlanFromAPI(t *testing.T) {
	base := startKapiHelper(t)
	c, err := kubernetes.NewForConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nsObj, err := c.CoreV1().Namespaces().Create(ctx, kubeobj.Namespace("", kubeobj.WithGenerateName("dualstack-")), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	for i, n := range []string{"n1", "n2"} {
		node := kubeobj.Node(ns+"-"+n, kubeobj.WithNodeIP(fmt.Sprintf("192.0.2.%d", 11+i)), kubeobj.WithNodeIP(fmt.Sprintf("2001:db8::%d", 11+i)),
			kubeobj.WithLabels(map[string]string{"ravel-lb": ns}), kubeobj.Ready(true))
		if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
	}
	if _, err := c.CoreV1().Services(ns).Create(ctx, kubeobj.Service(ns, "web", kubeobj.WithPort("http", 80, 8080)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sliceOpts := map[string][]kubeobj.EndpointSliceOption{
		"web-v4": {kubeobj.WithSlicePort("http", 8080),
			kubeobj.WithEndpoint("10.1.0.1", ns+"-n1", true, true, false), kubeobj.WithEndpoint("10.1.0.2", ns+"-n1", true, true, false)},
		"web-v6": {kubeobj.WithSlicePort("http", 8080),
			kubeobj.WithEndpoint("fd00:1::1", ns+"-n1", true, true, false), kubeobj.WithEndpoint("fd00:1::2", ns+"-n2", true, true, false)},
	}
	for name, opts := range sliceOpts {
		if _, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, kubeobj.EndpointSlice(ns, "web", name, opts...), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse("dualstack.yaml", []byte(`apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director-1, role: director, interface: eth0, vipInterface: ravel0}
kubernetes:
  nodeSelector: {ravel-lb: `+ns+`}
vipPool: [10.200.0.1, "2001:db8:200::1"]
services:
  - {name: web, vip: 10.200.0.1, port: 80, kubernetes: {namespace: `+ns+`, service: web, portName: http}}
  - {name: web6, vip: "2001:db8:200::1", port: 80, kubernetes: {namespace: `+ns+`, service: web, portName: http}}
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := kube.OptionsFrom(&cfg.ClusterConfig)
	opts.Logger = discard
	src, err := kube.NewSourceFromConfig(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Source.Run: %v", err)
		}
	}()
	var snap *kube.Snapshot
	for snap == nil {
		select {
		case s := <-src.Snapshots():
			ok := len(s.Services) == 2
			for _, st := range s.Services {
				ok = ok && st.Status == kube.StatusOK && len(st.Endpoints) == 2
			}
			if ok {
				snap = s
			}
		case <-ctx.Done():
			t.Fatal("no snapshot with both families' endpoints")
		}
	}
	desired, _ := reconcile.Desired(cfg, snap, reconcile.Node{Name: "director-1", Role: "director"})
	plan := reconcile.Diff(desired, reconcile.NewState("ravel0"), reconcile.DiffOptions{Owned: reconcile.OwnedVIPs(cfg)}).String()
	t.Logf("plan:\n%s", plan)
	for _, want := range []string{
		"add service tcp [2001:db8:200::1]:80 (web6)",
		"add destination [2001:db8::11]:80 to tcp [2001:db8:200::1]:80 (web6): dr weight 1",
		"add destination [2001:db8::12]:80 to tcp [2001:db8:200::1]:80 (web6): dr weight 1",
		"add destination 192.0.2.11:80 to tcp 10.200.0.1:80 (web): dr weight 2",
		"add destination 192.0.2.12:80 to tcp 10.200.0.1:80 (web): dr weight 0",
		"bind 2001:db8:200::1 on ravel0",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("the plan has no %q", want)
		}
	}
}
