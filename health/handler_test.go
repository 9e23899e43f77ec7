package health

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// These tests complete TestHandler (probe_test.go): they decode every body instead of
// looking for substrings, and cover the view's own methods and JSON field names.

var (
	hVIP  = netip.MustParseAddr("10.0.0.1")
	hVIP6 = netip.MustParseAddr("fd00::1")
)

// handlerView is a synced node with: a served tcp service (3 endpoints), one whose rules are
// not programmed yet, one programmed with no local endpoint, a udp service on the same port
// as a tcp one, and an IPv6 service.
func handlerView() NodeView {
	return NodeView{Node: "n1", Synced: true, Services: []ServiceView{
		{VIP: hVIP, Port: 80, Protocol: "tcp", LocalEndpoints: 3, RulesProgrammed: true},
		{VIP: hVIP, Port: 81, Protocol: "tcp", LocalEndpoints: 1, RulesProgrammed: false},
		{VIP: hVIP, Port: 82, Protocol: "tcp", LocalEndpoints: 0, RulesProgrammed: true},
		{VIP: hVIP, Port: 53, Protocol: "udp", LocalEndpoints: 2, RulesProgrammed: true},
		{VIP: hVIP6, Port: 443, Protocol: "tcp", LocalEndpoints: 5, RulesProgrammed: true},
	}}
}

func serve(v NodeView, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	NewHandler(func() NodeView { return v }).ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestHandlerWholeViewBody(t *testing.T) {
	v := handlerView()
	rec := serve(v, "GET", "/healthz")
	if rec.Code != 200 {
		t.Fatalf("whole view: status %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if w := rec.Header().Get(WeightHeader); w != "" {
		t.Errorf("the whole view carries %s %q, want none (it is per service)", WeightHeader, w)
	}
	var got NodeView
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("decoded view\n%+v\nwant\n%+v", got, v)
	}
}

func TestHandlerWholeViewUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*NodeView)
	}{
		{"draining", func(v *NodeView) { v.Draining = true }},
		{"not synced", func(v *NodeView) { v.Synced = false }},
		{"draining and not synced", func(v *NodeView) { v.Draining, v.Synced = true, false }},
	} {
		v := handlerView()
		tc.edit(&v)
		rec := serve(v, "GET", "/healthz")
		if rec.Code != 503 {
			t.Errorf("%s: status %d, want 503", tc.name, rec.Code)
		}
		// The body is still the whole view: a director reads why from it.
		var got NodeView
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Errorf("%s: body %q is not JSON: %v", tc.name, rec.Body, err)
			continue
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%s: decoded view\n%+v\nwant\n%+v", tc.name, got, v)
		}
	}
}

func TestHandlerNoServicesIsEmptyList(t *testing.T) {
	rec := serve(NodeView{Node: "n1", Synced: true}, "GET", "/healthz")
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if s := string(raw["services"]); s != "[]" {
		t.Errorf(`a view without services has "services": %s, want []`, s)
	}
}

func TestHandlerService(t *testing.T) {
	v := handlerView()
	for _, tc := range []struct {
		target string
		code   int
		weight string
		want   serviceAnswer
	}{
		{"/healthz?vip=10.0.0.1&port=80&protocol=tcp", 200, "3",
			serviceAnswer{Node: "n1", VIP: hVIP, Port: 80, Protocol: "tcp", LocalEndpoints: 3, RulesProgrammed: true}},
		// protocol defaults to tcp, in the answer too
		{"/healthz?vip=10.0.0.1&port=80", 200, "3",
			serviceAnswer{Node: "n1", VIP: hVIP, Port: 80, Protocol: "tcp", LocalEndpoints: 3, RulesProgrammed: true}},
		{"/healthz?vip=10.0.0.1&port=80&protocol=", 200, "3",
			serviceAnswer{Node: "n1", VIP: hVIP, Port: 80, Protocol: "tcp", LocalEndpoints: 3, RulesProgrammed: true}},
		// rules not programmed: not served, weight 0, but the answer says what the node has
		{"/healthz?vip=10.0.0.1&port=81", 503, "0",
			serviceAnswer{Node: "n1", VIP: hVIP, Port: 81, Protocol: "tcp", LocalEndpoints: 1, RulesProgrammed: false}},
		// programmed without a local endpoint
		{"/healthz?vip=10.0.0.1&port=82", 503, "0",
			serviceAnswer{Node: "n1", VIP: hVIP, Port: 82, Protocol: "tcp", LocalEndpoints: 0, RulesProgrammed: true}},
		// unknown service
		{"/healthz?vip=10.0.0.1&port=8080", 503, "0",
			serviceAnswer{Node: "n1", VIP: hVIP, Port: 8080, Protocol: "tcp"}},
		{"/healthz?vip=10.9.9.9&port=80", 503, "0",
			serviceAnswer{Node: "n1", VIP: netip.MustParseAddr("10.9.9.9"), Port: 80, Protocol: "tcp"}},
		// the protocol is part of the service's identity
		{"/healthz?vip=10.0.0.1&port=53&protocol=udp", 200, "2",
			serviceAnswer{Node: "n1", VIP: hVIP, Port: 53, Protocol: "udp", LocalEndpoints: 2, RulesProgrammed: true}},
		{"/healthz?vip=10.0.0.1&port=53", 503, "0",
			serviceAnswer{Node: "n1", VIP: hVIP, Port: 53, Protocol: "tcp"}},
		{"/healthz?vip=10.0.0.1&port=80&protocol=udp", 503, "0",
			serviceAnswer{Node: "n1", VIP: hVIP, Port: 80, Protocol: "udp"}},
		{"/healthz?vip=fd00::1&port=443", 200, "5",
			serviceAnswer{Node: "n1", VIP: hVIP6, Port: 443, Protocol: "tcp", LocalEndpoints: 5, RulesProgrammed: true}},
	} {
		rec := serve(v, "GET", tc.target)
		if rec.Code != tc.code || rec.Header().Get(WeightHeader) != tc.weight {
			t.Errorf("%s: status %d weight %q, want %d %q", tc.target, rec.Code, rec.Header().Get(WeightHeader), tc.code, tc.weight)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tc.target, ct)
		}
		var got serviceAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Errorf("%s: body %q: %v", tc.target, rec.Body, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: answer %+v, want %+v", tc.target, got, tc.want)
		}
	}
}

func TestHandlerServiceOnUnavailableNode(t *testing.T) {
	// A served service answers 503 and weight 0 on a node draining or not synced yet.
	d := handlerView()
	d.Draining = true
	rec := serve(d, "GET", "/healthz?vip=10.0.0.1&port=80")
	var a serviceAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != 503 || rec.Header().Get(WeightHeader) != "0" || !a.Draining || a.LocalEndpoints != 3 {
		t.Errorf("draining node: %d weight %q answer %+v, want 503, 0, draining with its 3 endpoints", rec.Code, rec.Header().Get(WeightHeader), a)
	}
	ns := handlerView()
	ns.Synced = false
	rec = serve(ns, "GET", "/healthz?vip=10.0.0.1&port=80")
	if rec.Code != 503 || rec.Header().Get(WeightHeader) != "0" {
		t.Errorf("node not synced: %d weight %q, want 503 and 0", rec.Code, rec.Header().Get(WeightHeader))
	}
}

func TestHandlerBadQuery(t *testing.T) {
	v := handlerView()
	for _, target := range []string{
		"/healthz?vip=nope&port=80",
		"/healthz?vip=&port=80",
		"/healthz?port=80",                 // no vip
		"/healthz?vip=10.0.0.1",            // no port
		"/healthz?protocol=tcp",            // only a protocol
		"/healthz?vip=10.0.0.1:80&port=80", // an address with a port is not a vip
		"/healthz?vip=10.0.0.1&port=0",     // port 0
		"/healthz?vip=10.0.0.1&port=70000", // beyond 16 bits
		"/healthz?vip=10.0.0.1&port=-1",    // negative
		"/healthz?vip=10.0.0.1&port=http",  // not a number
		"/healthz?vip=10.0.0.1&port=80&protocol=sctp",
		"/healthz?vip=10.0.0.1&port=80&protocol=TCP", // case matters: the view says tcp
	} {
		rec := serve(v, "GET", target)
		if rec.Code != 400 {
			t.Errorf("%s: status %d, want 400 (%s)", target, rec.Code, rec.Body)
		}
		if w := rec.Header().Get(WeightHeader); w != "" {
			t.Errorf("%s: a bad query carries a weight %q", target, w)
		}
	}
}

func TestHandlerMethodsAndPaths(t *testing.T) {
	v := handlerView()
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		rec := serve(v, m, "/healthz")
		if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /healthz: %d Allow %q, want 405 and \"GET, HEAD\"", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	if rec := serve(v, "POST", "/healthz?vip=10.0.0.1&port=80"); rec.Code != 405 {
		t.Errorf("POST of a service: %d, want 405", rec.Code)
	}
	for _, p := range []string{"/other", "/", "/healthz/", "/healthzz", "/metrics"} {
		if rec := serve(v, "GET", p); rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
	if rec := serve(v, "POST", "/other"); rec.Code != 404 {
		t.Errorf("POST /other: %d, want 404 (the path is checked first)", rec.Code)
	}
}

// TestHandlerOverHTTP serves the handler on a real server: HEAD is answered with the status
// and headers of GET and no body, and each request reads the view afresh.
func TestHandlerOverHTTP(t *testing.T) {
	var calls atomic.Int64
	var draining atomic.Bool
	srv := httptest.NewServer(NewHandler(func() NodeView {
		calls.Add(1)
		v := handlerView()
		v.Draining = draining.Load()
		return v
	}))
	defer srv.Close()
	do := func(method, target string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	resp, body := do("HEAD", "/healthz")
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD /healthz: %d %q body %q, want 200, JSON, no body", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = do("HEAD", "/healthz?vip=10.0.0.1&port=80")
	if resp.StatusCode != 200 || resp.Header.Get(WeightHeader) != "3" || body != "" {
		t.Errorf("HEAD of a service: %d weight %q body %q, want 200, 3, no body", resp.StatusCode, resp.Header.Get(WeightHeader), body)
	}
	resp, body = do("GET", "/healthz")
	if resp.StatusCode != 200 || !strings.Contains(body, `"draining":false`) {
		t.Errorf("GET /healthz: %d %s", resp.StatusCode, body)
	}
	draining.Store(true)
	resp, body = do("GET", "/healthz")
	if resp.StatusCode != 503 || !strings.Contains(body, `"draining":true`) {
		t.Errorf("GET /healthz once draining: %d %s, want 503 with draining true", resp.StatusCode, body)
	}
	resp, _ = do("GET", "/healthz?vip=10.0.0.1&port=80")
	if resp.StatusCode != 503 || resp.Header.Get(WeightHeader) != "0" {
		t.Errorf("a service once draining: %d weight %q, want 503 and 0", resp.StatusCode, resp.Header.Get(WeightHeader))
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("view called %d times for 5 requests, want once per request", n)
	}
	if _, _ = do("POST", "/healthz"); calls.Load() != 5 {
		t.Errorf("a refused POST read the view")
	}
}

func TestNodeViewServing(t *testing.T) {
	v := handlerView()
	for _, tc := range []struct {
		vip   netip.Addr
		port  uint16
		proto string
		want  bool
	}{
		{hVIP, 80, "tcp", true},
		{hVIP, 81, "tcp", false}, // rules not programmed
		{hVIP, 82, "tcp", false}, // no local endpoint
		{hVIP, 53, "udp", true},
		{hVIP, 53, "tcp", false}, // other protocol
		{hVIP, 80, "udp", false},
		{hVIP, 8080, "tcp", false}, // not listed
		{netip.MustParseAddr("10.0.0.2"), 80, "tcp", false},
		{hVIP6, 443, "tcp", true},
	} {
		if got := v.Serving(tc.vip, tc.port, tc.proto); got != tc.want {
			t.Errorf("Serving(%s, %d, %q) = %v, want %v", tc.vip, tc.port, tc.proto, got, tc.want)
		}
	}
	d := handlerView()
	d.Draining = true
	if d.Serving(hVIP, 80, "tcp") {
		t.Error("a draining node serves")
	}
	ns := handlerView()
	ns.Synced = false
	if ns.Serving(hVIP, 80, "tcp") {
		t.Error("a node not synced serves")
	}
	var empty NodeView
	if empty.Serving(hVIP, 80, "tcp") {
		t.Error("the zero view serves")
	}
}

func TestNodeViewIndex(t *testing.T) {
	v := handlerView()
	m := v.Index()
	if len(m) != len(v.Services) {
		t.Fatalf("Index has %d entries for %d services", len(m), len(v.Services))
	}
	for _, s := range v.Services {
		if got, ok := m[ServiceID{s.VIP, s.Port, s.Protocol}]; !ok || got != s {
			t.Errorf("Index[%s:%d/%s] = %+v, %v, want %+v", s.VIP, s.Port, s.Protocol, got, ok, s)
		}
	}
	// The protocol is part of the key: udp/53 is not tcp/53.
	if _, ok := m[ServiceID{hVIP, 53, "tcp"}]; ok {
		t.Error("Index finds tcp/53 for a udp/53 service")
	}
	if _, ok := m[ServiceID{hVIP, 8080, "tcp"}]; ok {
		t.Error("Index finds an unlisted service")
	}
	// Index agrees with Serving on every service of a synced node.
	for id, s := range m {
		if want := s.RulesProgrammed && s.LocalEndpoints > 0; v.Serving(id.VIP, id.Port, id.Protocol) != want {
			t.Errorf("Serving(%v) disagrees with its Index entry %+v", id, s)
		}
	}
	var empty NodeView
	if m := empty.Index(); m == nil || len(m) != 0 {
		t.Errorf("Index of the zero view: %v, want an empty map", m)
	}
}

// TestNodeViewJSONNames pins the wire format both sides share: a realserver of another build
// must still be understood.
func TestNodeViewJSONNames(t *testing.T) {
	const doc = `{"node":"n7","synced":true,"draining":true,"services":[` +
		`{"vip":"10.0.0.1","port":80,"protocol":"tcp","localEndpoints":3,"rulesProgrammed":true},` +
		`{"vip":"fd00::1","port":443,"protocol":"udp","localEndpoints":0,"rulesProgrammed":false}]}`
	var v NodeView
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	want := NodeView{Node: "n7", Synced: true, Draining: true, Services: []ServiceView{
		{VIP: hVIP, Port: 80, Protocol: "tcp", LocalEndpoints: 3, RulesProgrammed: true},
		{VIP: hVIP6, Port: 443, Protocol: "udp"},
	}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", v, want)
	}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != doc {
		t.Errorf("encoded\n%s\nwant\n%s", b, doc)
	}
}
