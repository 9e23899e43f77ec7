package layers

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ravel-lb/ravel/"

// rule places packages (a path, or a path ending in "/..." for a tree) and lists what their
// non-test code may import of ravel's own packages, in the same form. The data path reads left
// to right, schema → config → kube → reconcile → netops: each may import what is to its left,
// except netops, the only code that touches the kernel, which knows none of them (it is handed
// plain values: services, destinations, addresses, local services to serve). daemon wires
// them together; cmd/ravel is flags and wiring above daemon.
type rule struct {
	pkg   string
	allow []string
}

// everywhere lists the packages every package may import: values shared by all layers that
// import nothing of ravel's themselves.
var everywhere = []string{"family"}

// testOnly lists the packages that only tests may import: no package's own (non-test) code
// may, whatever its rule allows. They are test kits that reach across the layers.
var testOnly = []string{"internal/netnstest"}

var rules = []rule{
	{"family", nil},
	// The namespace test kit joins namespaces with netops.InNetns; tests only import it (see
	// testOnly), so it adds no edge to any layer's own code.
	{"internal/netnstest", []string{"netops", "internal/..."}},
	// Helpers with no notion of ravel's config, usable by any layer.
	{"internal/...", []string{"internal/..."}},
	{"schema", nil},
	{"schema/internal/gen", []string{"schema"}},
	{"config", []string{"schema", "internal/..."}},
	{"kube", []string{"schema", "config", "internal/..."}},
	{"netops", nil},
	{"netops/...", []string{"netops", "netops/...", "internal/..."}},
	{"reconcile", []string{"schema", "config", "kube", "netops", "internal/..."}},
	// The network side of health checks and the BGP speaker touch sockets, like netops, and
	// know nothing of the config either.
	{"health", []string{"internal/..."}},
	{"bgp", []string{"internal/..."}},
	{"daemon", []string{"schema", "config", "kube", "reconcile", "netops", "netops/...", "health", "bgp", "internal/..."}},
	{"cmd/ravel", []string{"schema", "config", "kube", "reconcile", "netops", "netops/...", "health", "bgp", "daemon", "internal/..."}},
	// Packages that hold only tests or tools: deploy's manifests, the systemd unit, benchmarks
	// and e2e helpers. They may use the internal helpers, nothing of the data path.
	{"deploy", []string{"internal/..."}},
	{"systemd", []string{"internal/..."}},
	{"bench/...", []string{"internal/..."}},
	{"test/...", []string{"internal/..."}},
}

// matches reports whether pattern (a path or a tree "p/...") names pkg.
func matches(pattern, pkg string) bool {
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return strings.HasPrefix(pkg, tree+"/")
	}
	return pattern == pkg
}

// place returns the first rule naming pkg.
func place(pkg string) (rule, bool) {
	i := slices.IndexFunc(rules, func(r rule) bool { return matches(r.pkg, pkg) })
	if i < 0 {
		return rule{}, false
	}
	return rules[i], true
}

// imports lists every package of the module with its non-test imports of the module, paths
// relative to it.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	graph := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkg, ok := strings.CutPrefix(f[0], module)
		if !ok {
			continue
		}
		graph[pkg] = nil
		for _, imp := range f[1:] {
			if rel, ok := strings.CutPrefix(imp, module); ok {
				graph[pkg] = append(graph[pkg], rel)
			}
		}
	}
	return graph
}

// check returns one line per package outside the rules and per import edge they do not allow.
func check(graph map[string][]string) []string {
	var bad []string
	for pkg, deps := range graph {
		r, ok := place(pkg)
		if !ok {
			bad = append(bad, pkg+": no layer (add it to the rules in internal/layers)")
			continue
		}
		for _, d := range deps {
			switch {
			case slices.Contains(testOnly, d):
				bad = append(bad, pkg+" imports "+d+" (only tests may)")
			case !slices.Contains(everywhere, d) && !slices.ContainsFunc(r.allow, func(a string) bool { return matches(a, d) }):
				bad = append(bad, pkg+" imports "+d)
			}
		}
	}
	slices.Sort(bad)
	return bad
}

// TestLayers fails on any import between ravel's packages that the rules do not allow, and on
// a package the rules do not place.
func TestLayers(t *testing.T) {
	graph := imports(t)
	if len(graph) < 10 {
		t.Fatalf("go list found %d packages; is the module path %q?", len(graph), module)
	}
	for _, b := range check(graph) {
		t.Error(b)
	}
}

// TestCheckRefuses: the edges the layering exists to forbid are reported, and an unknown
// package is too.
func TestCheckRefuses(t *testing.T) {
	graph := map[string][]string{
		"config":             {"schema", "netops/iptables/chains"},
		"netops/iptables":    {"netops", "reconcile"},
		"netops":             {"schema"},
		"kube":               {"reconcile"},
		"reconcile":          {"netops", "daemon"},
		"daemon":             {"cmd/ravel"},
		"newpkg":             nil,
		"internal/golden":    {"config"},
		"schema":             nil,
		"cmd/ravel":          {"daemon", "netops/iptables"},
		"netops/iptables2":   {"netops/iptables/chains", "family"},
		"family":             {"schema"},
		"internal/netnstest": {"netops"},
		"netops/nftables":    {"internal/netnstest"},
	}
	want := []string{
		"config imports netops/iptables/chains",
		"daemon imports cmd/ravel",
		"family imports schema",
		"internal/golden imports config",
		"kube imports reconcile",
		"netops imports schema",
		"netops/iptables imports reconcile",
		"netops/nftables imports internal/netnstest (only tests may)",
		"newpkg: no layer (add it to the rules in internal/layers)",
		"reconcile imports daemon",
	}
	if got := check(graph); !slices.Equal(got, want) {
		t.Errorf("check reported\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
