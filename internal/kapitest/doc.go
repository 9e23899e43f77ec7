// Package kapitest runs a real kube-apiserver and etcd on 127.0.0.1 for integration tests.
//
// The binaries are kube-apiserver v1.37.2 and etcd v3.7.0, built from the Go module proxy by
// hack/kapi/build.sh and cached outside the clone (see /work/shared/notes/kube-apiserver.md).
// There is no controller-manager, scheduler or kubelet: tests write EndpointSlices and node
// status themselves (build them with internal/kubeobj; see kubeobj.SetNodeReady), namespace
// deletion never finishes and garbage collection never runs, so use a fresh namespace per test
// (Server.Namespace).
//
// The files follow the parts of the harness: server.go the Server and its etcd and
// kube-apiserver (the control plane), process.go the child processes, certs.go the
// certificates, token and kubeconfig, binaries.go where the binaries come from, shared.go the
// entry points for tests (Start, RunShared, Shared), client.go the clients and namespaces.
//
// Binary lookup, in order:
//   - $KAPI_BIN/kube-apiserver and $KAPI_BIN/etcd, if KAPI_BIN is set;
//   - hack/kapi/build.sh from the module root (a no-op when its cache is warm).
//
// If RAVEL_REQUIRE_KAPI is unset (or "0"), build.sh is only asked for a cached build, because a
// cold build takes about 11 minutes, longer than go test's default timeout: without binaries,
// Start and Shared skip the test and say how to get them ("make kapi"). With
// RAVEL_REQUIRE_KAPI=1 (CI), build.sh builds if needed and a missing binary fails the test.
// Under go test -short (make check) without RAVEL_REQUIRE_KAPI, Start and Shared skip at once,
// so the quick loop never starts an API server; make test runs these tests in full.
//
// Two ways to use it:
//
//	func TestX(t *testing.T) {
//		s := kapitest.Start(t) // own server, stopped by t.Cleanup
//		...
//	}
//
// or one server per test binary:
//
//	func TestMain(m *testing.M) { os.Exit(kapitest.RunShared(m)) }
//	func TestY(t *testing.T) {
//		s := kapitest.Shared(t)
//		ns := s.Namespace(t)
//		...
//	}
//
// Tests that stop or restart the API server should use their own server (Start), not Shared.
package kapitest
