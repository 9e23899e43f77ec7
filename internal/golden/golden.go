// Package golden compares test output with golden files under testdata, the one copy of the
// helper that the packages with *.golden files share.
//
//	golden.Check(t, "plan-from-empty", plan.String()) // compares with testdata/plan-from-empty.golden
//
// Run the package's tests with -update to rewrite the files with the current output:
//
//	go test ./reconcile -update
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// update is registered on the test binary's command line by every package that imports this
// one; only tests import it.
var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// Dir is where the golden files are, relative to the package directory (go test's working
// directory).
const Dir = "testdata"

// Check compares got with testdata/name.golden, or rewrites the file under -update. A missing
// file or a difference fails t (the difference as a cmp.Diff, -want +got); the test goes on.
func Check(t testing.TB, name, got string) {
	t.Helper()
	check(t, filepath.Join(Dir, name+".golden"), got, *update)
}

func check(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}
