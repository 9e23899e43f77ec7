package kapitest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
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
