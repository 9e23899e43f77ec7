// Command kubeload fills a kube-apiserver with the cluster that bench/rss.sh measures ravel
// against: NODES Ready nodes and SERVICES services in one namespace, each service with one
// EndpointSlice of EPS ready endpoints on every node (port "http", 80 → 8080).
//
//	go run ./bench/kubeload -kubeconfig FILE [-nodes 20] [-services 1000] [-eps-per-node 5]
//
// Node i is "bench-n<i>" with InternalIP 10.250.<i/250>.<1+i%250> and the label
// ravel-bench=true (use it as ravel's nodeSelector). Service i is "svc-<i>"; its endpoints are
// 10.<64+i/256>.<i%256>.<1+k>, k = node*EPS + e. The API server is expected to be a fresh one
// (hack/kapi/kapi.sh up): objects that exist already are an error.
//
// hack/kapi/kapi.sh gives the API server a /24 of ClusterIPs, too few for 1,000 services:
// with -service-cidr (default 10.97.0.0/16) kubeload first adds a ServiceCIDR object. Without a
// controller-manager nobody sets its Ready condition, and the API server's allocator takes a
// ServiceCIDR without one as ready; service creates are retried while it catches up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ravel-lb/ravel/internal/kubeobj"
	"github.com/ravel-lb/ravel/internal/parallel"
)

// NodeLabel is the label every node gets, for ravel's kubernetes.nodeSelector.
const NodeLabel = "ravel-bench"

func main() {
	var (
		kubeconfig  = flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server")
		namespace   = flag.String("namespace", "bench", "namespace of the services")
		nodes       = flag.Int("nodes", 20, "Ready nodes")
		services    = flag.Int("services", 1000, "services, each with one EndpointSlice")
		epsPerNode  = flag.Int("eps-per-node", 5, "ready endpoints of each service on each node")
		workers     = flag.Int("workers", 16, "parallel creates")
		serviceCIDR = flag.String("service-cidr", "10.97.0.0/16", "extra ServiceCIDR to create first (empty: none)")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("kubeload: ")
	if *nodes < 1 || *nodes > 250*250 || *services < 1 || *services > 256*192 || *epsPerNode < 1 || *nodes**epsPerNode > 254 {
		log.Fatal("out of range: 1 ≤ nodes, 1 ≤ services ≤ 49152, 1 ≤ eps-per-node, nodes × eps-per-node ≤ 254")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()

	if *serviceCIDR != "" {
		sc := &networkingv1.ServiceCIDR{
			ObjectMeta: metav1.ObjectMeta{Name: "ravel-bench"},
			Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{*serviceCIDR}},
		}
		if _, err := c.NetworkingV1().ServiceCIDRs().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
			log.Fatalf("ServiceCIDR %s: %v", *serviceCIDR, err)
		}
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, kubeobj.Namespace(*namespace), metav1.CreateOptions{}); err != nil {
		log.Fatalf("namespace: %v", err)
	}
	names := make([]string, *nodes)
	for i := range names {
		names[i] = fmt.Sprintf("bench-n%d", i)
	}
	err = parallel.Do(*nodes, *workers, func(i int) error {
		n := kubeobj.Node(names[i], kubeobj.WithNodeIP(fmt.Sprintf("10.250.%d.%d", i/250, 1+i%250)),
			kubeobj.WithLabels(map[string]string{NodeLabel: "true"}), kubeobj.Ready(true))
		_, err := c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		log.Fatalf("nodes: %v", err)
	}
	err = parallel.Do(*services, *workers, func(i int) error {
		name := fmt.Sprintf("svc-%d", i)
		svc := kubeobj.Service(*namespace, name, kubeobj.WithPort("http", 80, 8080))
		if err := retry(ctx, func() error {
			_, err := c.CoreV1().Services(*namespace).Create(ctx, svc, metav1.CreateOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		opts := make([]kubeobj.EndpointSliceOption, 0, *nodes**epsPerNode+1)
		for n, node := range names {
			for e := range *epsPerNode {
				k := n**epsPerNode + e
				opts = append(opts, kubeobj.WithEndpoint(fmt.Sprintf("10.%d.%d.%d", 64+i/256, i%256, 1+k), node, true, true, false))
			}
		}
		opts = append(opts, kubeobj.WithSlicePort("http", 8080))
		slice := kubeobj.EndpointSlice(*namespace, name, name+"-1", opts...)
		if _, err := c.DiscoveryV1().EndpointSlices(*namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("EndpointSlice of %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d nodes, %d services × %d endpoints (%d per node) in namespace %s, in %v",
		*nodes, *services, *nodes**epsPerNode, *epsPerNode, *namespace, time.Since(start).Round(time.Millisecond))
}

// retry retries f for up to 30 s while the API server refuses for a reason that passes (a
// ClusterIP range it has not caught up with, a conflict, a timeout). An AlreadyExists is final.
func retry(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		err := f()
		if err == nil || apierrors.IsAlreadyExists(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
	}
}
