package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestRealserverNodeMissing: a realserver whose node name is not in the Kubernetes snapshot (a
// mixed-case hostname, a typo in --node-name) programs no local service. It says so: one log
// line when it goes missing (not one per sync), /status's nodeProblem and /readyz not ready
// with the reason; all of it clears when the node appears.
func TestRealserverNodeMissing(t *testing.T) {
	f := newRealserverFakes(t, "eth0")
	r := newTestRealserver(t, "realserver.yaml", f, makeSnapshot(withNode("rs-2", "10.1.0.2"), withNodesChanged))
	var logs syncBuffer
	r.log = slog.New(slog.NewTextHandler(&logs, nil))
	st := NewStatus("test", r.cfg)
	r.SetStatus(st)

	for range 3 {
		must(t, r.Sync(context.Background()))
	}
	if n := strings.Count(logs.String(), "this node is not in the Kubernetes snapshot"); n != 1 {
		t.Errorf("%d log lines about the missing node over 3 syncs, want 1:\n%s", n, logs.String())
	}
	ready, why := st.Ready()
	if ready || !strings.Contains(why, `node "rs-1" is not in the Kubernetes snapshot`) {
		t.Errorf("Ready() = %v, %q; want not ready, naming the node", ready, why)
	}
	if p := st.Report().NodeProblem; !strings.Contains(p, `"rs-1"`) {
		t.Errorf("status nodeProblem = %q, want it to name rs-1", p)
	}

	r.snaps.Set(realserverSnapshot())
	must(t, r.Sync(context.Background()))
	if ready, why := st.Ready(); !ready {
		t.Errorf("Ready() after the node appeared = false, %q", why)
	}
	if p := st.Report().NodeProblem; p != "" {
		t.Errorf("status nodeProblem after the node appeared = %q, want none", p)
	}
	if !strings.Contains(logs.String(), "this node is in the Kubernetes snapshot now") {
		t.Errorf("no log line when the node appeared:\n%s", logs.String())
	}
}
