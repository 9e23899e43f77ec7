package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Kinds of probe.
const (
	TCP  = "tcp"  // a connect, closed at once
	HTTP = "http" // a GET whose status must be ExpectStatus
	Node = "node" // a GET of a realserver's /healthz node view
)

// Probe is one network check.
type Probe struct {
	Kind         string
	Addr         netip.AddrPort
	Path         string // HTTP: request path ("/" if empty); Node: always /healthz
	Host         string // HTTP: Host header; empty means Addr
	ExpectStatus int    // HTTP: the status that counts as up (200 if 0)
	Timeout      time.Duration
}

// Result of one probe.
type Result struct {
	OK bool
	// Reason is why it is not OK, in a few words: "connect: connection refused",
	// "status 503, want 200", "timeout after 1s".
	Reason string
	Status int       // HTTP and Node: the status received, 0 if none
	View   *NodeView // Node: the view received (a draining node answers 503 with one)
	// Duration is how long the probe took.
	Duration time.Duration
}

// Body limits: an HTTP check's body is read (so the connection ends cleanly) and discarded; a
// node view of 10,000 services is about 1 MB of JSON.
const (
	maxHTTPBody = 64 << 10
	maxViewBody = 4 << 20
)

// Run performs one probe, within p.Timeout and ctx.
func Run(ctx context.Context, p Probe, c *Client) Result {
	start := time.Now()
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	var r Result
	switch p.Kind {
	case TCP:
		r = runTCP(ctx, p, c)
	case HTTP:
		r = runHTTP(ctx, p, c)
	case Node:
		r = runNode(ctx, p, c)
	default:
		r = Result{Reason: fmt.Sprintf("unknown probe kind %q", p.Kind)}
	}
	r.Duration = time.Since(start)
	if !r.OK && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.Reason = fmt.Sprintf("timeout after %s", p.Timeout)
	}
	return r
}

func runTCP(ctx context.Context, p Probe, c *Client) Result {
	conn, err := c.dialer.DialContext(ctx, "tcp", p.Addr.String())
	if err != nil {
		return Result{Reason: "connect: " + shortErr(err)}
	}
	conn.Close()
	return Result{OK: true}
}

func runHTTP(ctx context.Context, p Probe, c *Client) Result {
	path := p.Path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr.String()+path, nil)
	if err != nil {
		return Result{Reason: "request: " + err.Error()}
	}
	if p.Host != "" {
		req.Host = p.Host
	}
	resp, err := c.check.Do(req)
	if err != nil {
		return Result{Reason: "GET: " + shortErr(err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHTTPBody))
	want := p.ExpectStatus
	if want == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		return Result{Status: resp.StatusCode, Reason: fmt.Sprintf("status %d, want %d", resp.StatusCode, want)}
	}
	return Result{OK: true, Status: resp.StatusCode}
}

// runNode fetches a node view. OK means a view was received, whatever it says: a draining
// node answers 503 with its view, and the caller reads it.
func runNode(ctx context.Context, p Probe, c *Client) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr.String()+"/healthz", nil)
	if err != nil {
		return Result{Reason: "request: " + err.Error()}
	}
	resp, err := c.node.Do(req)
	if err != nil {
		return Result{Reason: "GET: " + shortErr(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHTTPBody))
		return Result{Status: resp.StatusCode, Reason: fmt.Sprintf("status %d, want a node view (200 or 503)", resp.StatusCode)}
	}
	var v NodeView
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxViewBody)).Decode(&v); err != nil {
		return Result{Status: resp.StatusCode, Reason: "node view: invalid JSON: " + err.Error()}
	}
	// Read to the end so the kept-alive connection can carry the next check.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHTTPBody))
	return Result{OK: true, Status: resp.StatusCode, View: &v}
}

// shortErr drops the "dial tcp 10.0.0.1:80: " prefix Go puts before the cause.
func shortErr(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		s := op.Err.Error()
		if i := strings.LastIndex(s, ": "); i >= 0 {
			return s[i+2:]
		}
		return s
	}
	return err.Error()
}
