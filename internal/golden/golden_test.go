package golden

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what check reports. Fatal and Fatalf end the goroutine
// as testing's do, so check runs in one of its own (see run).
type recorder struct {
	testing.TB // nil: check calls only the methods below
	errors     []string
	fatal      bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatal(args ...any) {
	r.errors = append(r.errors, fmt.Sprint(args...))
	r.fatal = true
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
	r.fatal = true
	runtime.Goexit()
}

// run calls f with a fresh recorder and returns the recorder once f has returned or stopped.
func run(f func(testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestCheckAgainstFile(t *testing.T) {
	Check(t, "example", "golden files are compared byte for byte\n")
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.golden")
	if err := os.WriteFile(path, []byte("+ add service\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if r := run(func(tb testing.TB) { check(tb, path, "+ add service\n", false) }); len(r.errors) != 0 {
		t.Errorf("same text: reported %q", r.errors)
	}

	r := run(func(tb testing.TB) { check(tb, path, "- delete service\n", false) })
	if r.fatal || len(r.errors) != 1 {
		t.Fatalf("different text: fatal %t, reported %q; want one error, not fatal", r.fatal, r.errors)
	}
	for _, want := range []string{path + " mismatch (-want +got)", "add service", "delete service"} {
		if !strings.Contains(r.errors[0], want) {
			t.Errorf("different text: the report lacks %q:\n%s", want, r.errors[0])
		}
	}

	missing := filepath.Join(dir, "missing.golden")
	r = run(func(tb testing.TB) { check(tb, missing, "x", false) })
	if !r.fatal || len(r.errors) != 1 || !strings.Contains(r.errors[0], missing) || !strings.Contains(r.errors[0], "go test -update") {
		t.Errorf("missing file: fatal %t, reported %q; want one fatal error naming the file and -update", r.fatal, r.errors)
	}
}

func TestCheckUpdate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.golden")
	if r := run(func(tb testing.TB) { check(tb, path, "rewritten\n", true) }); len(r.errors) != 0 {
		t.Fatalf("update: reported %q", r.errors)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "rewritten\n" {
		t.Fatalf("update wrote %q, %v; want %q", b, err, "rewritten\n")
	}
	// Under -update nothing is compared: a changed output replaces the file.
	if r := run(func(tb testing.TB) { check(tb, path, "again\n", true) }); len(r.errors) != 0 {
		t.Errorf("second update: reported %q", r.errors)
	}
	if r := run(func(tb testing.TB) { check(tb, path, "again\n", false) }); len(r.errors) != 0 {
		t.Errorf("after the update: reported %q", r.errors)
	}

	r := run(func(tb testing.TB) { check(tb, filepath.Join(dir, "no-such-dir", "x.golden"), "x", true) })
	if !r.fatal {
		t.Errorf("update into a missing directory: fatal %t, reported %q; want fatal", r.fatal, r.errors)
	}
}

// Check reads testdata/NAME.golden from the working directory, the package's under go test.
func TestCheckUsesTestdata(t *testing.T) {
	defer func(u bool) { *update = u }(*update)
	*update = false // compare even under go test -update
	t.Chdir(t.TempDir())
	if err := os.Mkdir(Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(Dir, "here.golden"), []byte("here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(func(tb testing.TB) { Check(tb, "here", "here\n") }); len(r.errors) != 0 {
		t.Errorf("reported %q", r.errors)
	}
	if r := run(func(tb testing.TB) { Check(tb, "here", "elsewhere\n") }); len(r.errors) != 1 || !strings.Contains(r.errors[0], "testdata/here.golden mismatch") {
		t.Errorf("reported %q, want one mismatch of testdata/here.golden", r.errors)
	}
}

func TestUpdateFlag(t *testing.T) {
	f := flag.Lookup("update")
	if f == nil || f.DefValue != "false" {
		t.Fatalf("flag -update: %+v, want a bool flag defaulting to false", f)
	}
}
