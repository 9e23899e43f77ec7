package config

import (
	"strings"
	"testing"

	"github.com/ravel-lb/ravel/reconcile/chains"
)

// TestChainPatternMatchesChains keeps the config's chain rule and the chains package's limit
// equal: the longest name the pattern accepts is exactly chains.MaxPrefixLen, and the chains
// package accepts it.
func TestChainPatternMatchesChains(t *testing.T) {
	longest := "R" + strings.Repeat("A", chains.MaxPrefixLen-1)
	if !reChain.MatchString(longest) {
		t.Errorf("pattern refuses %q (%d characters, chains.MaxPrefixLen)", longest, len(longest))
	}
	if err := (chains.Options{Chain: longest}).Validate(); err != nil {
		t.Errorf("chains refuses %q: %v", longest, err)
	}
	if reChain.MatchString(longest + "A") {
		t.Errorf("pattern accepts %q, longer than chains.MaxPrefixLen", longest+"A")
	}
}
