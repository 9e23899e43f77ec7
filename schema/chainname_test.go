package schema

import (
	"regexp"
	"strings"
	"testing"
)

// TestPatternChainLength keeps PatternChain and MaxChainPrefixLen equal: the longest name the
// pattern accepts is exactly MaxChainPrefixLen characters.
func TestPatternChainLength(t *testing.T) {
	re := regexp.MustCompile(PatternChain)
	longest := "R" + strings.Repeat("A", MaxChainPrefixLen-1)
	if !re.MatchString(longest) {
		t.Errorf("PatternChain refuses %q (%d characters)", longest, len(longest))
	}
	if re.MatchString(longest + "A") {
		t.Errorf("PatternChain accepts %q, longer than MaxChainPrefixLen", longest+"A")
	}
}

func TestChainPrefixConflict(t *testing.T) {
	for prefix, want := range map[string]string{
		"RAVEL":    "",
		"ravel_lb": "",
		"KUB":      "",
		"OUTPUT":   `chain name "OUTPUT" is a built-in chain or target`,
		"accept":   `chain name "accept" is a built-in chain or target`,
		"KUBE":     `chain name "KUBE" would own chains of another program (KUBE*)`,
		"KUBE_SVC": `chain name "KUBE_SVC" would own chains of another program (KUBE*)`,
		"cali":     `chain name "cali" would own chains of another program (cali*)`,
		"DOCKER2":  `chain name "DOCKER2" would own chains of another program (DOCKER*)`,
	} {
		got := ""
		if err := ChainPrefixConflict(prefix); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("ChainPrefixConflict(%q) = %q, want %q", prefix, got, want)
		}
	}
}
