package kube

import (
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/internal/deploynames"
)

// TestDeployKubeMetricsExist: every ravel_kube_* metric that deploy/'s dashboard and alert
// rules name is one the kube source registers (cmd/ravel's TestDeployMetricsExist checks the
// others against a running ravel).
func TestDeployKubeMetricsExist(t *testing.T) {
	names, err := deploynames.Referenced("../deploy")
	if err != nil {
		t.Fatal(err)
	}
	rec := deploynames.NewRecorder()
	if _, err := newMetrics(rec, false); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		if !strings.HasPrefix(name, "ravel_kube_") {
			continue
		}
		n++
		if !rec.Names[name] {
			t.Errorf("%s is named in deploy/ but the kube source registers no such metric", name)
		}
	}
	if n == 0 {
		t.Error("deploy/ names no ravel_kube_* metric: the dashboard lost its Kubernetes row")
	}
}
