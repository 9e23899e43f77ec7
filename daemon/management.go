package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/reconcile"
)

// ManagementListener answers management.port on every VIP of the pool on the director itself,
// when there is no Kubernetes service to send it to (static backends only): GET /healthz names
// the director and the VIP, so `curl http://VIP:port/healthz` from anywhere proves the VIP
// routes to this machine. It is owned by the director's goroutine.
type ManagementListener struct {
	node string
	log  *slog.Logger
	port int
	srvs map[netip.Addr]*http.Server
}

// NewManagementListener returns a listener set for node name, listening nowhere yet.
func NewManagementListener(node string, log *slog.Logger) *ManagementListener {
	return &ManagementListener{node: node, log: log, srvs: map[netip.Addr]*http.Server{}}
}

// Sync listens on port management.port of every pool VIP when the director answers it
// (reconcile.DirectorAnswersManagement), and closes the others.
func (m *ManagementListener) Sync(cfg *config.Config) {
	want := map[netip.Addr]bool{}
	if reconcile.DirectorAnswersManagement(cfg) {
		for _, vip := range cfg.VIPPool {
			want[vip] = true
		}
	}
	if cfg.Management.Port != m.port {
		m.Close()
		m.port = cfg.Management.Port
	}
	for vip, srv := range m.srvs {
		if !want[vip] {
			srv.Close()
			delete(m.srvs, vip)
		}
	}
	for vip := range want {
		if m.srvs[vip] != nil {
			continue
		}
		srv, err := m.listen(vip)
		if err != nil {
			m.log.Error("management port: cannot listen", "vip", vip, "port", m.port, "err", err)
			continue
		}
		m.srvs[vip] = srv
	}
}

// listen binds vip:port with IP_FREEBIND: the VIP may not be bound on the device yet (the
// first sync binds it), and the listener must not depend on that order.
func (m *ManagementListener) listen(vip netip.Addr) (*http.Server, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(vip.String(), strconv.Itoa(m.port)))
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: m.handler(vip), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}

func (m *ManagementListener) handler(vip netip.Addr) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"node": m.node, "role": "director", "vip": vip})
	})
}

// Close stops every listener.
func (m *ManagementListener) Close() {
	for vip, srv := range m.srvs {
		srv.Close()
		delete(m.srvs, vip)
	}
}
