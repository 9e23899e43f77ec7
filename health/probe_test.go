package health

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func addrOf(t *testing.T, hostport string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(strings.TrimPrefix(hostport, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func server(t *testing.T, h http.Handler) (*countingListener, netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	srv := &http.Server{Handler: h}
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	return cl, addrOf(t, ln.Addr().String())
}

func TestProbeTCP(t *testing.T) {
	c := NewClient()
	defer c.Close()
	_, up := server(t, http.NotFoundHandler())
	if r := Run(context.Background(), Probe{Kind: TCP, Addr: up, Timeout: time.Second}, c); !r.OK {
		t.Errorf("tcp to a listener: %+v", r)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := addrOf(t, ln.Addr().String())
	ln.Close()
	r := Run(context.Background(), Probe{Kind: TCP, Addr: closed, Timeout: time.Second}, c)
	if r.OK || !strings.Contains(r.Reason, "connection refused") {
		t.Errorf("tcp to a closed port: %+v, want refused", r)
	}
}

func TestProbeHTTP(t *testing.T) {
	c := NewClient()
	defer c.Close()
	var mu sync.Mutex
	var hosts, paths []string
	redirected := atomic.Bool{}
	cl, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts, paths = append(hosts, r.Host), append(paths, r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(200)
		case "/down":
			w.WriteHeader(503)
		case "/nocontent":
			w.WriteHeader(204)
		case "/moved":
			http.Redirect(w, r, "/target", http.StatusFound)
		case "/target":
			redirected.Store(true)
		}
	}))
	for _, tc := range []struct {
		path   string
		expect int
		ok     bool
		reason string
	}{
		{"/ok", 0, true, ""},
		{"/down", 0, false, "status 503, want 200"},
		{"/nocontent", 204, true, ""},
		{"/ok", 204, false, "status 200, want 204"},
		{"/moved", 200, false, "status 302, want 200"},
	} {
		r := Run(context.Background(), Probe{Kind: HTTP, Addr: addr, Path: tc.path, Host: "web.example", ExpectStatus: tc.expect, Timeout: time.Second}, c)
		if r.OK != tc.ok || r.Reason != tc.reason {
			t.Errorf("GET %s expecting %d: %+v, want ok %v reason %q", tc.path, tc.expect, r, tc.ok, tc.reason)
		}
	}
	if redirected.Load() {
		t.Error("the check followed a redirect")
	}
	mu.Lock()
	if hosts[0] != "web.example" || paths[0] != "/ok" {
		t.Errorf("first request Host %q path %q, want web.example and /ok", hosts[0], paths[0])
	}
	mu.Unlock()
	if n := cl.n.Load(); n != 5 {
		t.Errorf("5 http checks used %d connections, want 5 (a new one each: no keep-alive)", n)
	}
}

func TestProbeTimeout(t *testing.T) {
	c := NewClient()
	defer c.Close()
	release := make(chan struct{})
	_, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	}))
	defer close(release)
	start := time.Now()
	r := Run(context.Background(), Probe{Kind: HTTP, Addr: addr, Timeout: 200 * time.Millisecond}, c)
	if r.OK || !strings.HasPrefix(r.Reason, "timeout after 200ms") {
		t.Errorf("a server that sleeps: %+v, want a timeout", r)
	}
	if time.Since(start) >= 5*time.Second {
		t.Error("the probe waited for the server instead of its timeout")
	}
}

func TestProbeNode(t *testing.T) {
	c := NewClient()
	defer c.Close()
	var view atomic.Value
	view.Store(NodeView{Node: "n1", Synced: true, Services: []ServiceView{{VIP: netip.MustParseAddr("10.0.0.1"), Port: 80, Protocol: "tcp", LocalEndpoints: 2, RulesProgrammed: true}}})
	cl, addr := server(t, NewHandler(func() NodeView { return view.Load().(NodeView) }))
	p := Probe{Kind: Node, Addr: addr, Timeout: time.Second}
	r := Run(context.Background(), p, c)
	if !r.OK || r.Status != 200 || r.View == nil || r.View.Node != "n1" || !r.View.Serving(netip.MustParseAddr("10.0.0.1"), 80, "tcp") {
		t.Fatalf("node view: %+v", r)
	}
	v := view.Load().(NodeView)
	v.Draining = true
	view.Store(v)
	r = Run(context.Background(), p, c)
	if !r.OK || r.Status != 503 || r.View == nil || !r.View.Draining {
		t.Errorf("draining node: %+v, want its view received (OK) with draining", r)
	}
	for range 3 {
		Run(context.Background(), p, c)
	}
	if n := cl.n.Load(); n != 1 {
		t.Errorf("5 node checks used %d connections, want 1 (kept alive)", n)
	}

	_, junk := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
	if r := Run(context.Background(), Probe{Kind: Node, Addr: junk, Timeout: time.Second}, c); r.OK || !strings.Contains(r.Reason, "invalid JSON") {
		t.Errorf("a non-JSON answer: %+v", r)
	}
	_, missing := server(t, http.NotFoundHandler())
	if r := Run(context.Background(), Probe{Kind: Node, Addr: missing, Timeout: time.Second}, c); r.OK || r.Status != 404 {
		t.Errorf("a 404: %+v", r)
	}
}

func TestHandler(t *testing.T) {
	vip := netip.MustParseAddr("10.0.0.1")
	v := NodeView{Node: "n1", Synced: true, Services: []ServiceView{
		{VIP: vip, Port: 80, Protocol: "tcp", LocalEndpoints: 3, RulesProgrammed: true},
		{VIP: vip, Port: 81, Protocol: "tcp", LocalEndpoints: 1, RulesProgrammed: false},
	}}
	get := func(v NodeView, method, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		NewHandler(func() NodeView { return v }).ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec
	}
	if rec := get(v, "GET", "/healthz"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"node":"n1"`) {
		t.Errorf("whole view: %d %s", rec.Code, rec.Body)
	}
	d := v
	d.Draining = true
	if rec := get(d, "GET", "/healthz"); rec.Code != 503 || !strings.Contains(rec.Body.String(), `"draining":true`) {
		t.Errorf("draining: %d %s, want 503 with the view", rec.Code, rec.Body)
	}
	ns := v
	ns.Synced = false
	if rec := get(ns, "GET", "/healthz"); rec.Code != 503 {
		t.Errorf("not synced: %d, want 503", rec.Code)
	}
	for _, tc := range []struct {
		target string
		code   int
		weight string
	}{
		{"/healthz?vip=10.0.0.1&port=80&protocol=tcp", 200, "3"},
		{"/healthz?vip=10.0.0.1&port=80", 200, "3"},
		{"/healthz?vip=10.0.0.1&port=81", 503, "0"},
		{"/healthz?vip=10.0.0.1&port=82", 503, "0"},
		{"/healthz?vip=10.0.0.1&port=80&protocol=udp", 503, "0"},
		{"/healthz?vip=nope&port=80", 400, ""},
		{"/healthz?vip=10.0.0.1&port=0", 400, ""},
		{"/healthz?vip=10.0.0.1&port=70000", 400, ""},
		{"/healthz?vip=10.0.0.1&port=80&protocol=sctp", 400, ""},
	} {
		rec := get(v, "GET", tc.target)
		if rec.Code != tc.code || rec.Header().Get(WeightHeader) != tc.weight {
			t.Errorf("%s: %d weight %q, want %d %q (%s)", tc.target, rec.Code, rec.Header().Get(WeightHeader), tc.code, tc.weight, rec.Body)
		}
		if tc.code != 400 {
			var a serviceAnswer
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Node != "n1" {
				t.Errorf("%s: body %s: %v", tc.target, rec.Body, err)
			}
		}
	}
	if rec := get(d, "GET", "/healthz?vip=10.0.0.1&port=80"); rec.Code != 503 || rec.Header().Get(WeightHeader) != "0" {
		t.Errorf("a served service on a draining node: %d weight %s, want 503 and 0", rec.Code, rec.Header().Get(WeightHeader))
	}
	if rec := get(v, "POST", "/healthz"); rec.Code != 405 || rec.Header().Get("Allow") == "" {
		t.Errorf("POST: %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if rec := get(v, "HEAD", "/healthz"); rec.Code != 200 {
		t.Errorf("HEAD: %d", rec.Code)
	}
	if rec := get(v, "GET", "/other"); rec.Code != 404 {
		t.Errorf("/other: %d", rec.Code)
	}
}
