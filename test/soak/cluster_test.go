package soak

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ravel-lb/ravel/internal/kubeobj"
	"github.com/ravel-lb/ravel/netops"
)

const (
	soakServices   = 50
	soakNodes      = 10
	soakEpsPerNode = 2
	servicePort    = 80
)

// cluster is the soak's namespace on the API server and what the churn last wrote there:
// soakNodes ready nodes labelled ravel-lb=<ns>, and services svc-0..svc-49, each with one
// EndpointSlice svc-<i>-1. Only the test goroutine uses it.
type cluster struct {
	c     kubernetes.Interface
	ns    string
	nodes []string     // names
	ips   []netip.Addr // InternalIPs, by node index
	svcs  []*service
}

// service is one Service's EndpointSlice as last written.
type service struct {
	name   string
	eps    []endpoint
	rv     string // resourceVersion of the last write
	rounds int    // changes written to it
	serial int    // endpoints created so far; the next one's address is addr(i, serial)
}

type endpoint struct {
	addr  netip.Addr
	node  int
	ready bool
}

// epAddr is endpoint number n of service i: 10.<64+i>.<n/250>.<1+n%250>. Every endpoint ever
// added gets a fresh address, so the churn also exercises keys that come and go.
func epAddr(i, n int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(64 + i), byte(n / 250), byte(1 + n%250)})
}

// vip is service i's virtual IP.
func vip(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 200, 0, byte(1 + i)}) }

// newCluster creates the namespace, nodes, services and slices through c.
func newCluster(t *testing.T, ctx context.Context, c kubernetes.Interface) *cluster {
	t.Helper()
	ns, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "soak-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{c: c, ns: ns.Name}
	for n := range soakNodes {
		name := fmt.Sprintf("%s-n%d", cl.ns, n)
		ip := netip.AddrFrom4([4]byte{192, 0, 100, byte(1 + n)})
		cl.nodes, cl.ips = append(cl.nodes, name), append(cl.ips, ip)
		node := kubeobj.Node(name, kubeobj.WithNodeIP(ip.String()),
			kubeobj.WithLabels(map[string]string{"ravel-lb": cl.ns}), kubeobj.Ready(true))
		if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range soakServices {
		s := &service{name: fmt.Sprintf("svc-%d", i)}
		for n := range soakNodes * soakEpsPerNode {
			s.eps = append(s.eps, endpoint{addr: epAddr(i, n), node: n % soakNodes, ready: true})
		}
		s.serial = len(s.eps)
		if _, err := c.CoreV1().Services(cl.ns).Create(ctx, kubeobj.Service(cl.ns, s.name,
			kubeobj.WithPort("http", servicePort, 8080)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := c.DiscoveryV1().EndpointSlices(cl.ns).Create(ctx, cl.slice(s.name, "", s.eps), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.rv = got.ResourceVersion
		cl.svcs = append(cl.svcs, s)
	}
	return cl
}

// slice is the EndpointSlice of service svc with eps, to write over resourceVersion rv.
func (cl *cluster) slice(svc, rv string, eps []endpoint) *discoveryv1.EndpointSlice {
	opts := []kubeobj.EndpointSliceOption{kubeobj.WithSlicePort("http", 8080)}
	for _, e := range eps {
		opts = append(opts, kubeobj.WithEndpoint(e.addr.String(), cl.nodes[e.node], e.ready, e.ready, false))
	}
	sl := kubeobj.EndpointSlice(cl.ns, svc, svc+"-1", opts...)
	sl.ResourceVersion = rv
	return sl
}

// change rewrites the EndpointSlice of service i with its next change, in a cycle of three:
// flip one endpoint's ready condition (a different one each cycle), add an endpoint on the next
// node (round robin) with a fresh address, remove the oldest endpoint. So a slice keeps
// soakNodes×soakEpsPerNode or one more endpoints, its addresses turn over, and node weights move.
//
// A failed write returns its error with the model re-read from the API server (the write may
// have been applied all the same); an error that re-read fails too is also fatal.
func (cl *cluster) change(ctx context.Context, i int) (writeErr, fatal error) {
	s := cl.svcs[i]
	next := slices.Clone(s.eps)
	cycle := s.rounds / 3
	switch s.rounds % 3 {
	case 0:
		e := &next[cycle%len(next)]
		e.ready = !e.ready
	case 1:
		next = append(next, endpoint{addr: epAddr(i, s.serial), node: cycle % soakNodes, ready: true})
		s.serial++
	case 2:
		next = slices.Delete(next, 0, 1)
	}
	s.rounds++
	api := cl.c.DiscoveryV1().EndpointSlices(cl.ns)
	got, err := api.Update(ctx, cl.slice(s.name, s.rv, next), metav1.UpdateOptions{})
	if err == nil {
		s.eps, s.rv = next, got.ResourceVersion
		return nil, nil
	}
	cur, gerr := api.Get(ctx, s.name+"-1", metav1.GetOptions{})
	if gerr != nil {
		return err, fmt.Errorf("%s: re-reading after a failed update (%v): %w", s.name, err, gerr)
	}
	eps, perr := cl.endpoints(cur)
	if perr != nil {
		return err, perr
	}
	s.eps, s.rv = eps, cur.ResourceVersion
	return fmt.Errorf("%s: %w", s.name, err), nil
}

// endpoints turns a stored slice back into the model's endpoints.
func (cl *cluster) endpoints(sl *discoveryv1.EndpointSlice) ([]endpoint, error) {
	var eps []endpoint
	for _, e := range sl.Endpoints {
		addr, err := netip.ParseAddr(e.Addresses[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sl.Name, err)
		}
		n := slices.Index(cl.nodes, *e.NodeName)
		if n < 0 {
			return nil, fmt.Errorf("%s: endpoint %s on unknown node %s", sl.Name, addr, *e.NodeName)
		}
		eps = append(eps, endpoint{addr: addr, node: n, ready: *e.Conditions.Ready})
	}
	return eps, nil
}

// weights are the IPVS destinations of one service: node address → weight.
type weights map[netip.Addr]int

// want is what the director must program for service i: every node, weighted by its ready
// endpoints (0 for none).
func (cl *cluster) want(i int) weights {
	return cl.weightsOf(cl.svcs[i].eps)
}

func (cl *cluster) weightsOf(eps []endpoint) weights {
	w := weights{}
	for _, ip := range cl.ips {
		w[ip] = 0
	}
	for _, e := range eps {
		if e.ready {
			w[cl.ips[e.node]]++
		}
	}
	return w
}

// stored reads every slice back from the API server, by service: the model must be what was
// written.
func (cl *cluster) stored(ctx context.Context) ([][]endpoint, error) {
	list, err := cl.c.DiscoveryV1().EndpointSlices(cl.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([][]endpoint, len(cl.svcs))
	for _, sl := range list.Items {
		var i int
		if _, err := fmt.Sscanf(sl.Labels[discoveryv1.LabelServiceName], "svc-%d", &i); err != nil || i < 0 || i >= len(out) {
			return nil, fmt.Errorf("unexpected EndpointSlice %s", sl.Name)
		}
		eps, err := cl.endpoints(&sl)
		if err != nil {
			return nil, err
		}
		out[i] = eps
	}
	return out, nil
}

// mismatch compares the fake IPVS with the model: every service, no other, each with exactly
// the wanted destinations and weights. It returns "" when they agree, else the first few
// differences.
func (cl *cluster) mismatch(ipvs *netops.FakeIPVS) string {
	var diffs []string
	svcs, err := ipvs.Services()
	if err != nil {
		return err.Error()
	}
	if len(svcs) != len(cl.svcs) {
		diffs = append(diffs, fmt.Sprintf("%d IPVS services, want %d", len(svcs), len(cl.svcs)))
	}
	for i := range cl.svcs {
		got, err := programmed(ipvs, i)
		if err != nil {
			diffs = append(diffs, err.Error())
		} else if want := cl.want(i); !maps.Equal(got, want) {
			diffs = append(diffs, fmt.Sprintf("%s: IPVS %v, want %v", cl.svcs[i].name, got, want))
		}
		if len(diffs) >= 3 {
			break
		}
	}
	return strings.Join(diffs, "; ")
}

// programmed reads service i's destinations from the fake IPVS.
func programmed(ipvs *netops.FakeIPVS, i int) (weights, error) {
	key := netops.ServiceKey{VIP: vip(i), Port: servicePort, Proto: netops.TCP}
	dests, err := ipvs.Destinations(key)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", key, err)
	}
	w := weights{}
	for _, d := range dests {
		w[d.Addr] = d.Weight
	}
	return w, nil
}
