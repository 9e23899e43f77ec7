package health

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests complete probe_test.go: what each request carries, the node view as it is on
// the wire, timeouts of node checks, and connections kept per node.

func TestProbeTCPReason(t *testing.T) {
	c := NewClient()
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	r := Run(context.Background(), Probe{Kind: TCP, Addr: closed, Timeout: time.Second}, c)
	if r.OK || r.Reason != "connect: connection refused" || r.Status != 0 || r.View != nil {
		t.Errorf("tcp to a closed port: %+v, want Reason \"connect: connection refused\" and nothing else", r)
	}
	if r.Duration <= 0 {
		t.Errorf("Duration %v, want it measured", r.Duration)
	}
}

func TestProbeUnknownKind(t *testing.T) {
	r := Run(context.Background(), Probe{Kind: "icmp", Addr: netip.MustParseAddrPort("127.0.0.1:1")}, NewClient())
	if r.OK || r.Reason != `unknown probe kind "icmp"` {
		t.Errorf("unknown kind: %+v", r)
	}
}

// TestProbeHTTPRequests records every request the HTTP check sends: always a GET with the
// probe's Host (or the address when it has none) and path with its query, "/" for none,
// and the redirect's target never.
func TestProbeHTTPRequests(t *testing.T) {
	c := NewClient()
	defer c.Close()
	type req struct{ method, host, uri string }
	var mu sync.Mutex
	var got []req
	_, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, req{r.Method, r.Host, r.URL.RequestURI()})
		mu.Unlock()
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/target", http.StatusFound)
		case "/permanent":
			http.Redirect(w, r, "http://"+r.Host+"/target", http.StatusMovedPermanently)
		case "/big":
			// A body beyond what the check reads must not make it fail.
			w.Write([]byte(strings.Repeat("x", 1<<20)))
		}
	}))
	for _, tc := range []struct {
		p      Probe
		ok     bool
		reason string
		status int
		want   req
	}{
		{Probe{Path: "/check", Host: "web.example"}, true, "", 200, req{"GET", "web.example", "/check"}},
		{Probe{Path: "/check?full=1&x=%2F", Host: "web.example"}, true, "", 200, req{"GET", "web.example", "/check?full=1&x=%2F"}},
		{Probe{}, true, "", 200, req{"GET", addr.String(), "/"}},
		{Probe{Path: "/moved", Host: "web.example"}, false, "status 302, want 200", 302, req{"GET", "web.example", "/moved"}},
		{Probe{Path: "/permanent"}, false, "status 301, want 200", 301, req{"GET", addr.String(), "/permanent"}},
		{Probe{Path: "/moved", ExpectStatus: 302}, true, "", 302, req{"GET", addr.String(), "/moved"}},
		{Probe{Path: "/big"}, true, "", 200, req{"GET", addr.String(), "/big"}},
	} {
		mu.Lock()
		got = nil
		mu.Unlock()
		p := tc.p
		p.Kind, p.Addr, p.Timeout = HTTP, addr, 2*time.Second
		r := Run(context.Background(), p, c)
		if r.OK != tc.ok || r.Reason != tc.reason || r.Status != tc.status || r.View != nil {
			t.Errorf("%+v: %+v, want ok %v status %d reason %q", tc.p, r, tc.ok, tc.status, tc.reason)
		}
		mu.Lock()
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%+v: the server got %+v, want exactly %+v", tc.p, got, tc.want)
		}
		mu.Unlock()
	}
}

// TestProbeNodeWire decodes a view written by hand as a realserver of another build could
// send it (not by NewHandler, which shares the struct and its tags with the check).
func TestProbeNodeWire(t *testing.T) {
	c := NewClient()
	defer c.Close()
	const doc = `{"node":"rs-3","synced":true,"draining":false,"extra":"ignored","services":[` +
		`{"vip":"10.1.2.3","port":443,"protocol":"tcp","localEndpoints":4,"rulesProgrammed":true},` +
		`{"vip":"fd00::53","port":53,"protocol":"udp","localEndpoints":0,"rulesProgrammed":false}]}` + "\n"
	var mu sync.Mutex
	var paths []string
	_, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(doc))
	}))
	// A Path given to a node probe is not used: the view is at /healthz.
	r := Run(context.Background(), Probe{Kind: Node, Addr: addr, Path: "/elsewhere", Timeout: 2 * time.Second}, c)
	want := &NodeView{Node: "rs-3", Synced: true, Services: []ServiceView{
		{VIP: netip.MustParseAddr("10.1.2.3"), Port: 443, Protocol: "tcp", LocalEndpoints: 4, RulesProgrammed: true},
		{VIP: netip.MustParseAddr("fd00::53"), Port: 53, Protocol: "udp"},
	}}
	if !r.OK || r.Status != 200 || r.Reason != "" || !reflect.DeepEqual(r.View, want) {
		t.Errorf("node view: %+v view %+v, want OK 200 with %+v", r, r.View, want)
	}
	mu.Lock()
	if len(paths) != 1 || paths[0] != "GET /healthz" {
		t.Errorf("the node got %q, want one GET /healthz", paths)
	}
	mu.Unlock()
}

func TestProbeNodeBadAnswers(t *testing.T) {
	c := NewClient()
	defer c.Close()
	for _, tc := range []struct {
		name   string
		h      http.HandlerFunc
		status int
		reason string
	}{
		{"404", http.NotFound, 404, "status 404, want a node view (200 or 503)"},
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, 500, "status 500, want a node view (200 or 503)"},
		{"garbage", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }, 200, "invalid JSON"},
		{"empty", func(w http.ResponseWriter, r *http.Request) {}, 200, "invalid JSON"},
		{"503 without a view", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}, 503, "invalid JSON"},
		{"truncated", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"node":"n1","synced":tr`)) }, 200, "invalid JSON"},
		{"a JSON list", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`[1,2]`)) }, 200, "invalid JSON"},
	} {
		_, addr := server(t, tc.h)
		r := Run(context.Background(), Probe{Kind: Node, Addr: addr, Timeout: 2 * time.Second}, c)
		if r.OK || r.View != nil || r.Status != tc.status || !strings.Contains(r.Reason, tc.reason) {
			t.Errorf("%s: %+v, want not OK, status %d, reason containing %q", tc.name, r, tc.status, tc.reason)
		}
	}
}

// TestProbeNodeTimeout: a node that accepts and never answers fails by the probe's timeout,
// long before the server would answer, and the client goes on checking other nodes.
func TestProbeNodeTimeout(t *testing.T) {
	c := NewClient()
	defer c.Close()
	release := make(chan struct{})
	_, hung := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	defer close(release)
	start := time.Now()
	r := Run(context.Background(), Probe{Kind: Node, Addr: hung, Timeout: 300 * time.Millisecond}, c)
	took := time.Since(start)
	if r.OK || r.Reason != "timeout after 300ms" {
		t.Errorf("a node that never answers: %+v, want Reason \"timeout after 300ms\"", r)
	}
	if took < 300*time.Millisecond {
		t.Errorf("the probe gave up after %v, before its 300ms timeout", took)
	}
	// A loose bound (8 times the timeout): the timeout is the one given, not a multiple.
	if took >= 2500*time.Millisecond {
		t.Errorf("the probe took %v with a 300ms timeout (the server holds it 10 s)", took)
	}

	_, ok := server(t, NewHandler(func() NodeView { return NodeView{Node: "n2", Synced: true} }))
	if r := Run(context.Background(), Probe{Kind: Node, Addr: ok, Timeout: 2 * time.Second}, c); !r.OK || r.View.Node != "n2" {
		t.Errorf("after a timeout, another node: %+v", r)
	}
}

// TestProbeCallerContext: a probe ends with its caller's context, and says so in its reason.
func TestProbeCallerContext(t *testing.T) {
	c := NewClient()
	defer c.Close()
	release := make(chan struct{})
	_, hung := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	}))
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	r := Run(ctx, Probe{Kind: HTTP, Addr: hung, Timeout: 10 * time.Second}, c)
	if r.OK || !strings.Contains(r.Reason, "canceled") {
		t.Errorf("a probe whose caller gave up: %+v, want not OK, canceled", r)
	}
	if time.Since(start) >= 5*time.Second {
		t.Error("the probe outlived its caller's context")
	}
}

// TestProbeNodeConnectionPerNode: node checks keep one connection per node, whatever the
// number of nodes; HTTP checks to the same servers open one each time.
func TestProbeNodeConnectionPerNode(t *testing.T) {
	c := NewClient()
	defer c.Close()
	h := NewHandler(func() NodeView { return NodeView{Node: "n", Synced: true} })
	var lns []*countingListener
	var addrs []netip.AddrPort
	for range 3 {
		ln, a := server(t, h)
		lns, addrs = append(lns, ln), append(addrs, a)
	}
	for round := range 4 {
		for i, a := range addrs {
			if r := Run(context.Background(), Probe{Kind: Node, Addr: a, Timeout: 2 * time.Second}, c); !r.OK {
				t.Fatalf("round %d node %d: %+v", round, i, r)
			}
		}
	}
	for i, ln := range lns {
		if n := ln.n.Load(); n != 1 {
			t.Errorf("node %d: 4 checks used %d connections, want 1", i, n)
		}
	}
	// Concurrent checks of one node may open more than one connection, but only one stays:
	// the next sequential checks reuse it and open no new one.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Run(context.Background(), Probe{Kind: Node, Addr: addrs[0], Timeout: 2 * time.Second}, c)
		}()
	}
	wg.Wait()
	before := lns[0].n.Load()
	for range 5 {
		Run(context.Background(), Probe{Kind: Node, Addr: addrs[0], Timeout: 2 * time.Second}, c)
	}
	if n := lns[0].n.Load() - before; n != 0 {
		t.Errorf("5 checks after concurrent ones opened %d new connections, want 0 (one kept)", n)
	}

	// HTTP checks of the same servers open a new connection each time.
	for i, a := range addrs {
		before := lns[i].n.Load()
		for range 3 {
			if r := Run(context.Background(), Probe{Kind: HTTP, Addr: a, Path: "/healthz", Timeout: 2 * time.Second}, c); !r.OK {
				t.Fatalf("http check of node %d: %+v", i, r)
			}
		}
		if n := lns[i].n.Load() - before; n != 3 {
			t.Errorf("node %d: 3 http checks used %d connections, want 3", i, n)
		}
	}
}

// TestProbeNodeTrailingData: a view followed by whitespace (a pretty-printer's final
// newlines, say) is read to its end, so the connection is kept for the next check.
func TestProbeNodeTrailingData(t *testing.T) {
	c := NewClient()
	defer c.Close()
	body := `{"node":"n1","synced":true,"draining":false,"services":[]}` + strings.Repeat(" \n", 16<<10)
	ln, addr := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	for i := range 5 {
		if r := Run(context.Background(), Probe{Kind: Node, Addr: addr, Timeout: 2 * time.Second}, c); !r.OK || r.View.Node != "n1" {
			t.Fatalf("check %d: %+v", i, r)
		}
	}
	if n := ln.n.Load(); n != 1 {
		t.Errorf("5 checks of a view with 32 KiB of trailing whitespace used %d connections, want 1", n)
	}
}
