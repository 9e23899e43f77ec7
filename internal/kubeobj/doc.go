// Package kubeobj builds the Kubernetes objects that ravel's tests, benchmarks and test tools
// write to an API server: Namespaces, Nodes, Services and EndpointSlices, each from a name and
// functional options. The builders only build the object; create it with a client, e.g.
//
//	c.CoreV1().Nodes().Create(ctx, kubeobj.Node("n1", kubeobj.WithNodeIP("192.0.2.1"), kubeobj.Ready(true)), metav1.CreateOptions{})
//
// Node status given to Create is kept by the API server (as for a registering kubelet); after
// that, status changes need UpdateStatus (see SetNodeReady).
//
// The package needs no server and imports no testing code: bench/kubeload and
// test/e2e/kubetool use it as well as the tests. The API server that tests run against is
// internal/kapitest's.
package kubeobj
