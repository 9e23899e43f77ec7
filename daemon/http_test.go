package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// testHandler is NewHTTPHandler over fresh metrics (3 destinations draining), a fixed
// readiness and rep.
func testHandler(ready bool, why string, rep Report) http.Handler {
	reg := prometheus.NewRegistry()
	NewMetrics(reg).Draining.Set(3)
	return NewHTTPHandler(reg, func() (bool, string) { return ready, why }, func() Report { return rep })
}

func TestHTTPHandler(t *testing.T) {
	rep := Report{Version: "v1.2.3", Node: "d1", Role: "director", Ready: true,
		LastSync: &SyncReport{Time: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), Kind: "full", Result: "ok", Duration: "1ms", Plan: "no changes"},
		Counts:   Counts{VirtualServices: 2, Destinations: 5, VIPs: 1, Draining: 3}}
	tests := []struct {
		name     string
		path     string
		ready    bool
		why      string
		wantCode int
		wantBody string // exact, unless wantLine is set
		wantLine string // a line the body must have
		wantType string // Content-Type prefix, if set
	}{
		{name: "healthz while not ready", path: "/healthz", why: "first sync not done yet", wantCode: 200, wantBody: "ok\n"},
		{name: "readyz ready", path: "/readyz", ready: true, wantCode: 200, wantBody: "ok\n"},
		{name: "readyz not ready says why", path: "/readyz", why: "first sync not done yet", wantCode: 503,
			wantBody: "not ready: first sync not done yet\n"},
		{name: "metrics", path: "/metrics", wantCode: 200, wantLine: "ravel_destinations_draining 3", wantType: "text/plain"},
		{name: "status", path: "/status", ready: true, wantCode: 200, wantBody: indentedJSON(t, rep), wantType: "application/json"},
		{name: "unknown path", path: "/debug", wantCode: 404, wantBody: "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			testHandler(tt.ready, tt.why, rep).ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if w.Code != tt.wantCode {
				t.Errorf("GET %s: status %d, want %d", tt.path, w.Code, tt.wantCode)
			}
			body := w.Body.String()
			if tt.wantLine != "" {
				if !strings.Contains("\n"+body, "\n"+tt.wantLine+"\n") {
					t.Errorf("GET %s: no line %q in:\n%s", tt.path, tt.wantLine, body)
				}
			} else if diff := cmp.Diff(tt.wantBody, body); diff != "" {
				t.Errorf("GET %s: body (-want +got):\n%s", tt.path, diff)
			}
			if ct := w.Header().Get("Content-Type"); tt.wantType != "" && !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("GET %s: Content-Type %q, want %s", tt.path, ct, tt.wantType)
			}
		})
	}
}

// The /status body decodes back to the report it was given.
func TestHTTPStatusRoundTrip(t *testing.T) {
	present := true
	rep := Report{Version: "v1", Node: "r1", Role: "realserver", NotReady: "first sync not done yet",
		LastReload:      &ReloadReport{Time: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), Trigger: "file", Result: ReloadInvalid, Error: "1 error(s)"},
		DirectorPresent: &present}
	w := httptest.NewRecorder()
	testHandler(false, rep.NotReady, rep).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/status", nil))
	var got Report
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("/status is not JSON: %v\n%s", err, w.Body)
	}
	if diff := cmp.Diff(rep, got); diff != "" {
		t.Errorf("/status (-want +got):\n%s", diff)
	}
}

// Wired to a Status as `ravel run` wires it, /readyz and /status follow its syncs.
func TestHTTPWithStatus(t *testing.T) {
	st := NewStatus("v1", loadConfig(t, "director-kube.yaml"))
	h := NewHTTPHandler(prometheus.NewRegistry(), st.Ready, st.Report)
	get := func(path string) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code, w.Body.String()
	}
	if code, body := get("/readyz"); code != 503 || body != "not ready: first sync not done yet\n" {
		t.Errorf("/readyz before the first sync: %d %q, want 503 and why", code, body)
	}
	st.RecordSync(SyncReport{Time: time.Now(), Kind: "full", Result: "ok", Plan: "no changes"})
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz after a good sync: %d %q, want 200", code, body)
	}
	_, body := get("/status")
	var rep Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	if !rep.Ready || rep.Role != "director" || rep.LastSync == nil || rep.LastSync.Plan != "no changes" {
		t.Errorf("/status = %+v, want ready, role director and the last sync", rep)
	}
}

func indentedJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// StartHTTP serves until its context ends, then shuts down and frees the port.
func TestStartHTTP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := StartHTTP(ctx, "127.0.0.1:0", testHandler(true, "", Report{}), discard)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + s.Addr().String()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("GET /readyz: %d %q, want 200 \"ok\\n\"", resp.StatusCode, body)
	}

	// A second server on the same address is refused, in the config's words.
	if _, err := StartHTTP(ctx, s.Addr().String(), http.NotFoundHandler(), discard); err == nil || !strings.HasPrefix(err.Error(), "metrics.listen "+s.Addr().String()+": ") {
		t.Errorf("StartHTTP on a busy address: %v, want a metrics.listen error", err)
	}

	cancel()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not shut down within 10s of its context ending")
	}
	http.DefaultClient.CloseIdleConnections()
	if conn, err := net.Dial("tcp", s.Addr().String()); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after shutdown", s.Addr())
	}
}
