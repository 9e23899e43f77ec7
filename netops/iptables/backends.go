package iptables

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

// Backends is what each iptables backend's nat table holds of kube-proxy's: the two backends
// are separate kernel tables, each invisible to the other's tools, and ravel's jump must be
// in front of KUBE-SERVICES in the backend kube-proxy writes, or kube-proxy takes VIP traffic
// first.
type Backends struct {
	// Mode is the backend ravel uses: "nf_tables" or "legacy".
	Mode string
	// KubeHere and KubeOther say whether KUBE-SERVICES is in ravel's backend and in the other.
	KubeHere, KubeOther bool
	// OtherAvailable is false when the other backend's tools are not installed.
	OtherAvailable bool
}

// Mismatch reports kube-proxy's chains in the other backend only: ravel's rules then never
// come before them.
func (b Backends) Mismatch() bool { return b.KubeOther && !b.KubeHere }

// String describes b for logs and status.
func (b Backends) String() string {
	where := "nowhere (no kube-proxy in iptables)"
	switch {
	case b.KubeHere && b.KubeOther:
		where = "both backends"
	case b.KubeHere:
		where = "the same backend"
	case b.KubeOther:
		where = "the other backend only"
	}
	return fmt.Sprintf("ravel uses %s; kube-proxy's KUBE-SERVICES is in %s", b.Mode, where)
}

// BackendChecker is implemented by Tables that can look at both iptables backends.
type BackendChecker interface {
	CheckBackends(ctx context.Context) (Backends, error)
}

var _ BackendChecker = (*Real)(nil)

func otherShort(mode string) string {
	if mode == "legacy" {
		return "nft"
	}
	return "legacy"
}

// CheckBackends reads the nat table of both backends (one iptables-save each) and says where
// kube-proxy's KUBE-SERVICES is.
func (r *Real) CheckBackends(ctx context.Context) (Backends, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := Backends{Mode: r.mode}
	here, err := r.e.b.save(ctx)
	if err != nil {
		return b, err
	}
	b.KubeHere = hasKubeServices(here)
	other, err := exec.LookPath(r.tool + "-" + otherShort(r.mode) + "-save")
	if err != nil {
		return b, nil
	}
	b.OtherAvailable = true
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, other, "-t", chains.Table)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := netops.InNetns(r.netns, cmd.Run); err != nil {
		// A legacy save on a kernel without ip_tables, say: nothing can be there.
		return b, nil
	}
	b.KubeOther = hasKubeServices(out.String())
	return b, nil
}

func hasKubeServices(save string) bool {
	return strings.Contains(save, "\n:KUBE-SERVICES ") || strings.HasPrefix(save, ":KUBE-SERVICES ")
}

// DetectMode is what iptables.backend auto picks: the backend that holds kube-proxy's
// KUBE-SERVICES when exactly one does (kube-proxy's own iptables-wrapper decides the same way
// by looking at what is there), else "" (the backend of the `iptables` on PATH). netns is as
// in WithNetns ("" for the caller's).
func DetectMode(ctx context.Context, netns string) string {
	has := kubeServices(ctx, netns)
	switch {
	case has["nft"] && !has["legacy"]:
		return "nft"
	case has["legacy"] && !has["nft"]:
		return "legacy"
	}
	return ""
}

// kubeServices says, per backend ("nft", "legacy") whose save ran, whether its nat table has
// KUBE-SERVICES.
func kubeServices(ctx context.Context, netns string) map[string]bool {
	if netns != "" && !strings.Contains(netns, "/") {
		netns = "/run/netns/" + netns
	}
	has := map[string]bool{}
	for _, m := range []string{"nft", "legacy"} {
		bin, err := exec.LookPath("iptables-" + m + "-save")
		if err != nil {
			continue
		}
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "-t", chains.Table)
		cmd.Stdout = &out
		if netops.InNetns(netns, cmd.Run) == nil {
			has[m] = hasKubeServices(out.String())
		}
	}
	return has
}
