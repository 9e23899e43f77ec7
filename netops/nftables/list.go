package nftables

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/ravel-lb/ravel/netops"
)

// listTable runs `nft list table inet <table>` in netns ("" when the table is missing).
func listTable(ctx context.Context, netns, table string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "nft", "list", "table", "inet", table)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := netops.InNetns(netns, cmd.Run); err != nil {
		if strings.Contains(stderr.String(), "No such file or directory") {
			return "", nil
		}
		return "", fmt.Errorf("nft list table inet %s: %w: %s", table, err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}
