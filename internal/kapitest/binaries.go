package kapitest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shortTest reports whether this is a test binary run with -short. From TestMain (RunShared),
// before m.Run has parsed the flags, it parses them itself, as the testing package's
// documentation allows TestMain to.
func shortTest() bool {
	if !testing.Testing() {
		return false
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	return testing.Short()
}

// Required reports whether RAVEL_REQUIRE_KAPI asks for the binaries to be present.
func Required() bool {
	v := os.Getenv("RAVEL_REQUIRE_KAPI")
	return v != "" && v != "0" && v != "false"
}

// findBinaries returns the directory holding kube-apiserver and etcd.
func findBinaries() (string, error) {
	if dir := os.Getenv("KAPI_BIN"); dir != "" {
		if haveBinaries(dir) {
			return dir, nil
		}
		if !Required() {
			return "", fmt.Errorf("%w: KAPI_BIN=%s lacks kube-apiserver or etcd", ErrUnavailable, dir)
		}
		// Let build.sh build into KAPI_BIN (it honors the variable).
	}
	script, err := buildScript()
	if err != nil {
		if Required() {
			return "", err
		}
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	args := []string{script}
	if !Required() {
		args = append(args, "--cached")
	}
	cmd := exec.Command("bash", args...)
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Env = os.Environ()
	if err := cmd.Run(); err != nil {
		msg := fmt.Sprintf("%s: %v\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		if Required() {
			return "", errors.New(msg)
		}
		return "", fmt.Errorf("%w (run `make kapi` to build them, about 11 minutes cold, or set KAPI_BIN; set RAVEL_REQUIRE_KAPI=1 to build on demand and fail instead of skipping): %s",
			ErrUnavailable, msg)
	}
	out := strings.Fields(stdout.String())
	if len(out) == 0 {
		return "", fmt.Errorf("%s printed no directory", script)
	}
	dir := out[len(out)-1]
	if !haveBinaries(dir) {
		return "", fmt.Errorf("%s printed %s, which lacks the binaries", script, dir)
	}
	return dir, nil
}

func haveBinaries(dir string) bool {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// buildScript finds hack/kapi/build.sh by walking up from the working directory (go test runs in
// the package directory) to the module root.
func buildScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "hack", "kapi", "build.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return "", fmt.Errorf("no hack/kapi/build.sh under module root %s", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/kapi/build.sh not found above the working directory")
		}
		dir = parent
	}
}
