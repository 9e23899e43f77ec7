// Package kapitest runs a real kube-apiserver and etcd on 127.0.0.1 for integration tests.
//
// The binaries are kube-apiserver v1.37.2 and etcd v3.7.0, built from the Go module proxy by
// hack/kapi/build.sh and cached outside the clone (see /work/shared/notes/kube-apiserver.md).
// There is no controller-manager, scheduler or kubelet: tests write EndpointSlices and node
// status themselves (see EndpointSlice and SetNodeReady), namespace deletion never finishes and
// garbage collection never runs, so use a fresh namespace per test (Server.Namespace).
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

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Version is the kube-apiserver version the harness expects.
const Version = "v1.37.2"

// ServiceCIDR is the --service-cluster-ip-range of the servers started by this package. It is
// a /16 (hack/kapi/kapi.sh uses a /24) so that a shared server doesn't run out of ClusterIPs:
// without a namespace controller, Services are only freed by deleting them one by one.
const ServiceCIDR = "10.96.0.0/16"

const (
	// AdminUser is the user behind the token in Server.Token: member of system:masters.
	AdminUser = "admin"
	// readyTimeout bounds the wait for /readyz.
	readyTimeout = 60 * time.Second
	// startAttempts covers the small race between picking a free port and binding it.
	startAttempts = 3
)

// ErrUnavailable is wrapped by the errors of StartShared and NewServer when the binaries are
// missing and RAVEL_REQUIRE_KAPI is not set: callers should skip, not fail.
var ErrUnavailable = errors.New("kapitest: kube-apiserver/etcd binaries unavailable")

// Server is a running etcd + kube-apiserver pair. The exported fields don't change after start,
// not even across RestartAPIServer (the port, certificates and token are kept).
type Server struct {
	// Kubeconfig is the path of a kubeconfig file for the admin user (system:masters).
	Kubeconfig string
	// Host is the API server URL, https://127.0.0.1:PORT.
	Host string
	// Token is the admin bearer token.
	Token string
	// CAFile is the PEM CA that signed the API server's serving certificate.
	CAFile string
	// Dir holds the certificates, etcd's data and the logs (etcd.log, kube-apiserver.log). It is
	// removed by Stop.
	Dir string
	// EtcdURL is etcd's client URL, http://127.0.0.1:PORT.
	EtcdURL string
	// BinDir holds the kube-apiserver and etcd binaries.
	BinDir string

	apiPort   int
	etcdPorts [2]int // client, peer
	caPool    *x509.CertPool

	opMu      sync.Mutex // serializes StartAPIServer, StopAPIServer and Stop
	mu        sync.Mutex // guards the fields below
	etcd      *proc
	apiserver *proc
	stopped   bool
}

// proc is one child process, in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // Wait's result, valid after done is closed
}

// Start starts a server for this test and stops it in t.Cleanup. If the binaries are unavailable
// and RAVEL_REQUIRE_KAPI is not set, it calls t.Skip; any other failure is fatal.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			t.Skip(err.Error())
		}
		t.Fatalf("kapitest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartShared starts a server that the caller must Stop, for use in TestMain. Its error wraps
// ErrUnavailable if the binaries are missing and RAVEL_REQUIRE_KAPI is not set.
func StartShared() (*Server, error) { return NewServer() }

var (
	sharedMu      sync.Mutex
	sharedServer  *Server
	sharedErr     error
	sharedStarted bool
)

// RunShared starts one server, runs the tests and stops the server; use it as
// `os.Exit(kapitest.RunShared(m))` in TestMain. Tests get the server from Shared. If the binaries
// are unavailable (and not required) the tests still run, and Shared skips them.
func RunShared(m *testing.M) int {
	s, err := StartShared()
	sharedMu.Lock()
	sharedServer, sharedErr, sharedStarted = s, err, true
	sharedMu.Unlock()
	if err != nil && !errors.Is(err, ErrUnavailable) {
		fmt.Fprintf(os.Stderr, "kapitest: %v\n", err)
		return 1
	}
	if s != nil {
		defer s.Stop()
	}
	return m.Run()
}

// Shared returns the server started by RunShared. It skips the test if the binaries are
// unavailable and fails it if RunShared was not called from TestMain.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	s, err, started := sharedServer, sharedErr, sharedStarted
	sharedMu.Unlock()
	switch {
	case !started:
		t.Fatal("kapitest.Shared: call os.Exit(kapitest.RunShared(m)) from TestMain first")
	case err != nil:
		t.Skip(err.Error())
	}
	return s
}

// shortTest reports whether this is a test binary run with -short. From TestMain (RunShared),
// before m.Run has parsed the flags, it parses them itself, as the testing package's
// documentation allows TestMain to.
func shortTest() bool {
	if !testing.Testing() {
		return false
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	return testing.Short()
}

// Required reports whether RAVEL_REQUIRE_KAPI asks for the binaries to be present.
func Required() bool {
	v := os.Getenv("RAVEL_REQUIRE_KAPI")
	return v != "" && v != "0" && v != "false"
}

// NewServer starts etcd and kube-apiserver and waits until /readyz is ok. The caller must Stop
// the server. Prefer Start or StartShared.
func NewServer() (*Server, error) {
	if !Required() && shortTest() {
		return nil, fmt.Errorf("%w: skipped under -short (make check); make test runs it", ErrUnavailable)
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		s, err := newServer(bin)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) {
			break
		}
	}
	return nil, lastErr
}

var errPortInUse = errors.New("address already in use")

const (
	dirPrefix = "ravel-kapi-"
	ownerFile = "owner.pid"
)

// removeStaleDirs removes the directories left by test binaries that died without cleaning up
// (go test's timeout panic skips cleanups; Pdeathsig has killed their servers already): those
// whose owner process is gone. Directories without an owner file are left alone.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

func newServer(bin string) (s *Server, err error) {
	removeStaleDirs()
	dir, err := os.MkdirTemp(os.TempDir(), dirPrefix)
	if err != nil {
		return nil, err
	}
	s = &Server{Dir: dir, BinDir: bin}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return s, err
	}
	s.etcdPorts = [2]int{ports[0], ports[1]}
	s.apiPort = ports[2]
	s.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", s.etcdPorts[0])
	s.Host = fmt.Sprintf("https://127.0.0.1:%d", s.apiPort)
	if err := s.writeFiles(); err != nil {
		return s, err
	}
	if err := os.Mkdir(filepath.Join(dir, "etcd"), 0o700); err != nil {
		return s, err
	}
	if err := s.startEtcd(); err != nil {
		return s, err
	}
	if err := s.StartAPIServer(); err != nil {
		return s, err
	}
	return s, nil
}

// writeFiles writes the certificates, SA key, token file and kubeconfig.
func (s *Server) writeFiles() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ravel-kapitest-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	s.Token = hex.EncodeToString(tok)
	s.CAFile = s.path("ca.crt")
	s.Kubeconfig = s.path("kubeconfig")
	s.caPool = x509.NewCertPool()
	s.caPool.AddCert(caCert)

	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return err
	}
	saKeyDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	files := []struct {
		name string
		data []byte
	}{
		{"ca.crt", pemOf("CERTIFICATE", caDER)},
		{"apiserver.crt", pemOf("CERTIFICATE", srvDER)},
		{"apiserver.key", pemOf("EC PRIVATE KEY", srvKeyDER)},
		{"sa.key", pemOf("EC PRIVATE KEY", saKeyDER)},
		{"sa.pub", pemOf("PUBLIC KEY", saPubDER)},
		{"tokens.csv", []byte(fmt.Sprintf("%s,%s,admin-uid,system:masters\n", s.Token, AdminUser))},
		{"kubeconfig", []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kapitest
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: kapitest
  context:
    cluster: kapitest
    user: admin
    namespace: default
current-context: kapitest
`, s.Host, s.CAFile, s.Token))},
	}
	for _, f := range files {
		if err := os.WriteFile(s.path(f.name), f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) path(name string) string { return filepath.Join(s.Dir, name) }

func (s *Server) startEtcd() error {
	client := fmt.Sprintf("http://127.0.0.1:%d", s.etcdPorts[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", s.etcdPorts[1])
	p, err := startProc("etcd", filepath.Join(s.BinDir, "etcd"), s.path("etcd.log"),
		"--name=kapitest",
		"--data-dir="+s.path("etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=kapitest="+peer,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.etcd = p
	s.mu.Unlock()
	// etcd is up in well under a second; wait for it so that the API server's first storage
	// check doesn't race it.
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := hc.Get(client + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`) {
				return nil
			}
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd not healthy after %v%s", readyTimeout, logTail(p.log.Name()))
		}
	}
}

// StartAPIServer starts the API server (after StopAPIServer) on the same port, with the same
// certificates and token, and waits for /readyz. etcd keeps its data in between.
func (s *Server) StartAPIServer() error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	switch {
	case s.stopped:
		s.mu.Unlock()
		return errors.New("kapitest: server stopped")
	case s.apiserver != nil:
		s.mu.Unlock()
		return errors.New("kapitest: API server already running")
	case s.etcd == nil:
		s.mu.Unlock()
		return errors.New("kapitest: etcd not running")
	}
	s.mu.Unlock()

	p, err := startProc("kube-apiserver", filepath.Join(s.BinDir, "kube-apiserver"), s.path("kube-apiserver.log"),
		"--etcd-servers="+s.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(s.apiPort),
		"--tls-cert-file="+s.path("apiserver.crt"),
		"--tls-private-key-file="+s.path("apiserver.key"),
		"--cert-dir="+s.path("certs"),
		"--endpoint-reconciler-type=none",
		"--token-auth-file="+s.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+s.path("sa.pub"),
		"--service-account-signing-key-file="+s.path("sa.key"),
		"--service-cluster-ip-range="+ServiceCIDR,
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.apiserver = p
	s.mu.Unlock()
	if err := s.waitReady(p); err != nil {
		s.killAPIServer()
		return err
	}
	return nil
}

func (s *Server) waitReady(p *proc) error {
	hc := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.caPool}},
	}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		req, _ := http.NewRequest(http.MethodGet, s.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
				return nil
			}
			last = fmt.Sprintf("HTTP %d", resp.StatusCode)
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver /readyz not ok after %v (last: %s)%s", readyTimeout, last, logTail(p.log.Name()))
		}
	}
}

// StopAPIServer kills the API server (SIGKILL to its process group) and waits for it to exit.
// etcd keeps running. It does nothing if the API server isn't running.
func (s *Server) StopAPIServer() {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.killAPIServer()
}

func (s *Server) killAPIServer() {
	s.mu.Lock()
	p := s.apiserver
	s.apiserver = nil
	s.mu.Unlock()
	p.kill()
}

// RestartAPIServer stops the API server and starts it again on the same port; etcd keeps its data.
func (s *Server) RestartAPIServer() error {
	s.StopAPIServer()
	return s.StartAPIServer()
}

// APIServerRunning reports whether the API server process is running.
func (s *Server) APIServerRunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apiserver == nil {
		return false
	}
	select {
	case <-s.apiserver.done:
		return false
	default:
		return true
	}
}

// PIDs returns the process IDs of etcd and the API server (0 when not running).
func (s *Server) PIDs() (etcd, apiserver int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.etcd.pid(), s.apiserver.pid()
}

// Stop kills both processes, waits for them and removes Dir. It is safe to call more than once.
// Set KAPITEST_KEEP_DIR=1 to keep Dir (logs, etcd data) for debugging.
func (s *Server) Stop() {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	api, etcd := s.apiserver, s.etcd
	s.apiserver, s.etcd = nil, nil
	s.mu.Unlock()
	api.kill()
	etcd.kill()
	if s.Dir != "" && os.Getenv("KAPITEST_KEEP_DIR") == "" {
		os.RemoveAll(s.Dir)
	}
}

// RESTConfig returns a new admin rest.Config (QPS and burst raised for tests).
func (s *Server) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            s.Host,
		BearerToken:     s.Token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: s.CAFile},
		QPS:             500,
		Burst:           1000,
		// No Timeout: it would apply to watches too. Use contexts.
	}
}

// RESTConfigAs returns a rest.Config that impersonates user (and groups) through the admin
// credentials, for RBAC tests: requests are authorized as that user.
func (s *Server) RESTConfigAs(user string, groups ...string) *rest.Config {
	c := s.RESTConfig()
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}

// Client returns a new admin clientset. It panics only if the config is invalid, which would be
// a bug in this package.
func (s *Server) Client() kubernetes.Interface {
	c, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		panic(fmt.Sprintf("kapitest: clientset: %v", err))
	}
	return c
}

// Namespace creates a namespace with a unique name derived from the test name and returns it.
// It is not deleted (deletion would never finish without a namespace controller).
func (s *Server) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := s.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kapitest: create namespace: %v", err)
	}
	return ns.Name
}

// namespacePrefix turns a test name into a DNS label prefix (GenerateName adds 5 characters).
func namespacePrefix(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	p := strings.Trim(b.String(), "-")
	for strings.Contains(p, "--") {
		p = strings.ReplaceAll(p, "--", "-")
	}
	if len(p) > 50 {
		p = strings.TrimRight(p[:50], "-")
	}
	if p == "" || p[0] < 'a' || p[0] > 'z' {
		p = "t-" + p
	}
	return strings.TrimRight(p, "-") + "-"
}

func startProc(name, binary, logPath string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "==== %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(append([]string{binary}, args...), " "))
	cmd := exec.Command(binary, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = os.Environ()
	// Own process group, so kill(-pgid) gets any child too; SIGKILL if the test binary dies
	// without running its cleanups (e.g. go test's timeout panic).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

var (
	spawnOnce sync.Once
	spawnReq  chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

// spawn starts cmd from one goroutine locked to its OS thread for good. Pdeathsig fires when the
// *thread* that forked the child exits, and Go ends a thread when a goroutine locked to it returns
// (tests that enter network namespaces do that), so forking from an arbitrary goroutine could get
// the servers killed in the middle of a test.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this goroutine and its thread live forever
			for r := range spawnReq {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReq <- spawnRequest{cmd, errc}
	return <-errc
}

func (p *proc) pid() int {
	if p == nil {
		return 0
	}
	select {
	case <-p.done:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// kill sends SIGKILL to the process group and waits for the process to be reaped.
func (p *proc) kill() {
	if p == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

// exitError describes an early exit; errPortInUse is wrapped when the log says so.
func (p *proc) exitError() error {
	tail := logTail(p.log.Name())
	err := fmt.Errorf("%s exited early (%v)%s", p.name, p.err, tail)
	if strings.Contains(tail, "address already in use") {
		return fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return err
}

// logTail returns the last lines of a log file, formatted for an error message.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 40 {
			lines = lines[1:]
		}
	}
	return "\n--- last lines of " + path + " ---\n" + strings.Join(lines, "\n")
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// findBinaries returns the directory holding kube-apiserver and etcd.
func findBinaries() (string, error) {
	if dir := os.Getenv("KAPI_BIN"); dir != "" {
		if haveBinaries(dir) {
			return dir, nil
		}
		if !Required() {
			return "", fmt.Errorf("%w: KAPI_BIN=%s lacks kube-apiserver or etcd", ErrUnavailable, dir)
		}
		// Let build.sh build into KAPI_BIN (it honors the variable).
	}
	script, err := buildScript()
	if err != nil {
		if Required() {
			return "", err
		}
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	args := []string{script}
	if !Required() {
		args = append(args, "--cached")
	}
	cmd := exec.Command("bash", args...)
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Env = os.Environ()
	if err := cmd.Run(); err != nil {
		msg := fmt.Sprintf("%s: %v\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		if Required() {
			return "", errors.New(msg)
		}
		return "", fmt.Errorf("%w (run `make kapi` to build them, about 11 minutes cold, or set KAPI_BIN; set RAVEL_REQUIRE_KAPI=1 to build on demand and fail instead of skipping): %s",
			ErrUnavailable, msg)
	}
	out := strings.Fields(stdout.String())
	if len(out) == 0 {
		return "", fmt.Errorf("%s printed no directory", script)
	}
	dir := out[len(out)-1]
	if !haveBinaries(dir) {
		return "", fmt.Errorf("%s printed %s, which lacks the binaries", script, dir)
	}
	return dir, nil
}

func haveBinaries(dir string) bool {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// buildScript finds hack/kapi/build.sh by walking up from the working directory (go test runs in
// the package directory) to the module root.
func buildScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "hack", "kapi", "build.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return "", fmt.Errorf("no hack/kapi/build.sh under module root %s", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/kapi/build.sh not found above the working directory")
		}
		dir = parent
	}
}
