package daemon

import (
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/netops/iptables/chains"
	"github.com/ravel-lb/ravel/schema"
)

// TestChainPrefixFitsTheChains: the config accepts a prefix of at most
// schema.MaxChainPrefixLen characters and the daemon hands it to the iptables backend, whose
// service chains must stay within iptables' limit. The two lengths are kept in different
// layers (schema knows no backend), so this is where they meet.
func TestChainPrefixFitsTheChains(t *testing.T) {
	if schema.MaxChainPrefixLen != chains.MaxPrefixLen {
		t.Fatalf("schema.MaxChainPrefixLen = %d, chains.MaxPrefixLen = %d", schema.MaxChainPrefixLen, chains.MaxPrefixLen)
	}
	longest := "R" + strings.Repeat("a", schema.MaxChainPrefixLen-2) + "_"
	if err := (chains.Options{Chain: longest}).Validate(); err != nil {
		t.Errorf("chains refuses %q, which the schema accepts: %v", longest, err)
	}
}
