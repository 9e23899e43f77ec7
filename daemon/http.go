package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpShutdownGrace is how long requests in flight may take once the daemon stops.
const httpShutdownGrace = 2 * time.Second

// NewHTTPHandler returns the handler of metrics.listen:
//
//   - /metrics: the metrics gathered from reg;
//   - /healthz: 200 "ok" while the process answers;
//   - /readyz: 200 "ok" when ready says so, else 503 with its reason (Status.Ready: a config
//     is loaded, the first sync is done and the last good one is recent);
//   - /status: status() as indented JSON (Status.Report; `ravel status` reads it).
func NewHTTPHandler(reg prometheus.Gatherer, ready func() (bool, string), status func() Report) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status())
	})
	return mux
}

// HTTPServer is a running server of the daemon's HTTP endpoints (see StartHTTP).
type HTTPServer struct {
	addr net.Addr
	done chan struct{}
}

// StartHTTP listens on addr (metrics.listen) and serves h in the background until ctx ends;
// then it shuts the server down, giving requests in flight httpShutdownGrace. It returns once
// listening, or the error of listening. A failure of the server later is logged.
func StartHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (*HTTPServer, error) {
	return startHTTP(ctx, "metrics.listen", addr, h, log)
}

// StartHealthHTTP is StartHTTP for the realserver's health endpoint (health.listen).
func StartHealthHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (*HTTPServer, error) {
	return startHTTP(ctx, "health.listen", addr, h, log)
}

func startHTTP(ctx context.Context, what, addr string, h http.Handler, log *slog.Logger) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, addr, err)
	}
	s := &HTTPServer{addr: ln.Addr(), done: make(chan struct{})}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server failed", "listen", what, "err", err)
		}
	}()
	go func() {
		defer close(s.done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), httpShutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()
	if what == "metrics.listen" {
		log.Info("HTTP listening: /metrics /healthz /readyz /status", "addr", s.addr.String())
	} else {
		log.Info("health endpoint listening: /healthz", "addr", s.addr.String())
	}
	return s, nil
}

// Addr is the address the server listens on (the port chosen when addr asked for port 0).
func (s *HTTPServer) Addr() net.Addr { return s.addr }

// Done is closed once the server has shut down after its context ended.
func (s *HTTPServer) Done() <-chan struct{} { return s.done }
