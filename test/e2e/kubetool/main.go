// Command kubetool writes the Kubernetes objects of the e2e scenarios (test/e2e/scenarios/3*,
// 4*) to the bed's real kube-apiserver: nodes, services and EndpointSlices, built with
// internal/kubeobj's builders. There is no kubelet and no EndpointSlice controller behind that
// API server: what kubetool writes is exactly what ravel sees.
//
//	kubetool [--kubeconfig FILE] node NAME IP [--label k=v|k-]... [--ready=true|false] [--unschedulable=true|false]
//	kubetool [--kubeconfig FILE] service NS NAME --port name:port:targetPort...
//	kubetool [--kubeconfig FILE] slice NS SVC SLICE --port name:port... [--endpoint IP:NODE[:ready|notready]]...
//	kubetool [--kubeconfig FILE] delete-slice NS SLICE
//	kubetool [--kubeconfig FILE] ping      the API server answers (prints its version)
//	kubetool [--kubeconfig FILE] -          one command per line from stdin (one process, one
//	                                         client: process start-up is slow in the QEMU guest)
//
// Every command is create-or-update and idempotent. node: labels given as k=v are set, k- is
// removed, others are kept; --ready sets the Ready condition through UpdateStatus (a new node
// is Ready unless --ready=false); the address is its InternalIP. service: a selector-less
// ClusterIP service in namespace NS (created if missing) with exactly the given ports. slice:
// the EndpointSlice SLICE of service SVC gets exactly the given ports and endpoints (an endpoint
// is ready unless it says notready; "notready" endpoints are neither ready nor serving).
//
// The kubeconfig defaults to $KUBECONFIG. Exit status 0 on success, 1 on an API error, 2 on
// bad usage.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/ravel-lb/ravel/internal/kubeobj"
)

type usageError struct{ error }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stderr))
}

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("kubetool", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	timeout := fs.Duration("timeout", 60*time.Second, "overall timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: kubetool [--kubeconfig FILE] node|service|slice|delete-slice|ping ARGS... | -")
		return 2
	}
	if *kubeconfig == "" {
		fmt.Fprintln(stderr, "kubetool: no kubeconfig (--kubeconfig or KUBECONFIG)")
		return 2
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(stderr, "kubetool:", err)
		return 1
	}
	cfg.QPS, cfg.Burst = 100, 200
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "kubetool:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var cmds [][]string
	if fs.NArg() == 1 && fs.Arg(0) == "-" {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			cmds = append(cmds, strings.Fields(line))
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintln(stderr, "kubetool: reading stdin:", err)
			return 1
		}
	} else {
		cmds = [][]string{fs.Args()}
	}
	for _, cmd := range cmds {
		if err := do(ctx, c, cmd); err != nil {
			fmt.Fprintf(stderr, "kubetool: %s: %v\n", strings.Join(cmd, " "), err)
			var ue usageError
			if errors.As(err, &ue) {
				return 2
			}
			return 1
		}
	}
	return 0
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// optBool is a bool flag that remembers whether it was given.
type optBool struct{ set, v bool }

func (b *optBool) String() string { return strconv.FormatBool(b.v) }
func (b *optBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	b.set, b.v = true, v
	return err
}
func (b *optBool) IsBoolFlag() bool { return true }

// positional splits cmd[1:] into n positional arguments and the flags after them.
func positional(cmd []string, n int, usage string) ([]string, []string, error) {
	rest := cmd[1:]
	if len(rest) < n {
		return nil, nil, usageError{fmt.Errorf("usage: %s", usage)}
	}
	for _, a := range rest[:n] {
		if strings.HasPrefix(a, "-") {
			return nil, nil, usageError{fmt.Errorf("usage: %s", usage)}
		}
	}
	return rest[:n], rest[n:], nil
}

func do(ctx context.Context, c kubernetes.Interface, cmd []string) error {
	switch cmd[0] {
	case "node":
		return nodeCmd(ctx, c, cmd)
	case "service":
		return serviceCmd(ctx, c, cmd)
	case "slice":
		return sliceCmd(ctx, c, cmd)
	case "ping":
		v, err := c.Discovery().ServerVersion()
		if err != nil {
			return err
		}
		fmt.Println("kube-apiserver", v.GitVersion)
		return nil
	case "delete-slice":
		pos, _, err := positional(cmd, 2, "delete-slice NS SLICE")
		if err != nil {
			return err
		}
		err = c.DiscoveryV1().EndpointSlices(pos[0]).Delete(ctx, pos[1], metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	return usageError{fmt.Errorf("unknown command %q (node, service, slice, delete-slice, ping)", cmd[0])}
}

func nodeCmd(ctx context.Context, c kubernetes.Interface, cmd []string) error {
	const usage = "node NAME IP [--label k=v|k-]... [--ready=true|false] [--unschedulable=true|false]"
	pos, flags, err := positional(cmd, 2, usage)
	if err != nil {
		return err
	}
	name, ip := pos[0], pos[1]
	if _, err := netip.ParseAddr(ip); err != nil {
		return usageError{fmt.Errorf("node address: %w", err)}
	}
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var labels multi
	var ready, unsched optBool
	fs.Var(&labels, "label", "k=v sets a label, k- removes it")
	fs.Var(&ready, "ready", "the Ready condition")
	fs.Var(&unsched, "unschedulable", "spec.unschedulable (cordoned)")
	if err := fs.Parse(flags); err != nil || fs.NArg() > 0 {
		return usageError{fmt.Errorf("usage: %s", usage)}
	}
	set, del := map[string]string{}, []string{}
	for _, l := range labels {
		if k, ok := strings.CutSuffix(l, "-"); ok && !strings.Contains(l, "=") {
			del = append(del, k)
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--label %q: want k=v or k-", l)}
		}
		set[k] = v
	}

	nodes := c.CoreV1().Nodes()
	if _, err := nodes.Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		opts := []kubeobj.NodeOption{kubeobj.WithNodeIP(ip), kubeobj.Ready(!ready.set || ready.v), kubeobj.WithLabels(set)}
		if unsched.v {
			opts = append(opts, kubeobj.Unschedulable())
		}
		_, err := nodes.Create(ctx, kubeobj.Node(name, opts...), metav1.CreateOptions{})
		return err
	} else if err != nil {
		return err
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		for k, v := range set {
			n.Labels[k] = v
		}
		for _, k := range del {
			delete(n.Labels, k)
		}
		if unsched.set {
			n.Spec.Unschedulable = unsched.v
		}
		_, err = nodes.Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	// The address is status, like Ready: both go through UpdateStatus.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed := false
		addrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
		if len(n.Status.Addresses) != 1 || n.Status.Addresses[0] != addrs[0] {
			n.Status.Addresses, changed = addrs, true
		}
		if ready.set {
			cur := false
			for _, cd := range n.Status.Conditions {
				if cd.Type == corev1.NodeReady {
					cur = cd.Status == corev1.ConditionTrue
				}
			}
			if cur != ready.v || len(n.Status.Conditions) == 0 {
				// kubeobj's builder sets (or adds) the Ready condition.
				tmp := kubeobj.Node(name, kubeobj.Ready(ready.v))
				n.Status.Conditions = mergeReady(n.Status.Conditions, tmp.Status.Conditions[0])
				changed = true
			}
		}
		if !changed {
			return nil
		}
		_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

func mergeReady(conds []corev1.NodeCondition, ready corev1.NodeCondition) []corev1.NodeCondition {
	for i := range conds {
		if conds[i].Type == corev1.NodeReady {
			conds[i] = ready
			return conds
		}
	}
	return append(conds, ready)
}

func ensureNamespace(ctx context.Context, c kubernetes.Interface, ns string) error {
	_, err := c.CoreV1().Namespaces().Create(ctx, kubeobj.Namespace(ns), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// parsePort parses name:port[:targetPort] (fields of 2 or 3 parts).
func parsePort(s string, parts int) (string, []int32, error) {
	f := strings.Split(s, ":")
	if len(f) != parts {
		return "", nil, usageError{fmt.Errorf("port %q: want %d fields separated by ':'", s, parts)}
	}
	var nums []int32
	for _, x := range f[1:] {
		n, err := strconv.ParseUint(x, 10, 16)
		if err != nil || n == 0 {
			return "", nil, usageError{fmt.Errorf("port %q: %q is not a port number", s, x)}
		}
		nums = append(nums, int32(n))
	}
	return f[0], nums, nil
}

func serviceCmd(ctx context.Context, c kubernetes.Interface, cmd []string) error {
	const usage = "service NS NAME --port name:port:targetPort..."
	pos, flags, err := positional(cmd, 2, usage)
	if err != nil {
		return err
	}
	ns, name := pos[0], pos[1]
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ports multi
	fs.Var(&ports, "port", "name:port:targetPort")
	if err := fs.Parse(flags); err != nil || fs.NArg() > 0 || len(ports) == 0 {
		return usageError{fmt.Errorf("usage: %s", usage)}
	}
	var opts []kubeobj.ServiceOption
	for _, p := range ports {
		pn, nums, err := parsePort(p, 3)
		if err != nil {
			return err
		}
		opts = append(opts, kubeobj.WithPort(pn, nums[0], nums[1]))
	}
	if err := ensureNamespace(ctx, c, ns); err != nil {
		return err
	}
	want := kubeobj.Service(ns, name, opts...)
	svcs := c.CoreV1().Services(ns)
	_, err = svcs.Create(ctx, want, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := svcs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Ports = want.Spec.Ports
		_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

func sliceCmd(ctx context.Context, c kubernetes.Interface, cmd []string) error {
	const usage = "slice NS SVC SLICE --port name:port... [--endpoint IP:NODE[:ready|notready]]..."
	pos, flags, err := positional(cmd, 3, usage)
	if err != nil {
		return err
	}
	ns, svc, name := pos[0], pos[1], pos[2]
	fs := flag.NewFlagSet("slice", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ports, eps multi
	fs.Var(&ports, "port", "name:port")
	fs.Var(&eps, "endpoint", "IP:NODE[:ready|notready]")
	if err := fs.Parse(flags); err != nil || fs.NArg() > 0 || len(ports) == 0 {
		return usageError{fmt.Errorf("usage: %s", usage)}
	}
	var opts []kubeobj.EndpointSliceOption
	for _, p := range ports {
		pn, nums, err := parsePort(p, 2)
		if err != nil {
			return err
		}
		opts = append(opts, kubeobj.WithSlicePort(pn, nums[0]))
	}
	for _, e := range eps {
		f := strings.Split(e, ":")
		if len(f) < 2 || len(f) > 3 {
			return usageError{fmt.Errorf("endpoint %q: want IP:NODE[:ready|notready]", e)}
		}
		if _, err := netip.ParseAddr(f[0]); err != nil {
			return usageError{fmt.Errorf("endpoint %q: %w", e, err)}
		}
		ready := true
		if len(f) == 3 {
			switch f[2] {
			case "ready":
			case "notready":
				ready = false
			default:
				return usageError{fmt.Errorf("endpoint %q: the state is ready or notready", e)}
			}
		}
		opts = append(opts, kubeobj.WithEndpoint(f[0], f[1], ready, ready, false))
	}
	if err := ensureNamespace(ctx, c, ns); err != nil {
		return err
	}
	want := kubeobj.EndpointSlice(ns, svc, name, opts...)
	if want.Endpoints == nil {
		want.Endpoints = []discoveryv1.Endpoint{}
	}
	slices := c.DiscoveryV1().EndpointSlices(ns)
	_, err = slices.Create(ctx, want, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := slices.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Labels, cur.AddressType, cur.Ports, cur.Endpoints = want.Labels, want.AddressType, want.Ports, want.Endpoints
		_, err = slices.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}
