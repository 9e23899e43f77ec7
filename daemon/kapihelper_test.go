package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/ravel-lb/ravel/internal/kapitest"
)

// The API server of the tests and benchmarks that need one (TestKubeFeed,
// BenchmarkUpdateToPlan) runs in a child process: this test binary, run again as
// TestKapiHelperProcess.

// kapiHelperEnv turns the test binary into the host of BenchmarkUpdateToPlan's API server (see
// TestKapiHelperProcess).
const kapiHelperEnv = "RAVEL_BENCH_KAPI_HELPER"

// kapiHelperMsg is the helper's one line on stdout, after kapiHelperMark.
type kapiHelperMsg struct {
	Host, Token, CAFile string
	Skip, Err           string
}

const kapiHelperMark = "RAVEL-KAPI-HELPER "

// TestKapiHelperProcess is not a test: run by startKapiHelper with kapiHelperEnv=1, it starts a
// kapitest server, prints where it is, and stops it when its stdin closes (the benchmark ended
// or died). The server runs in this separate process because kapitest keeps a goroutine for
// the life of the process (spawn, locked to its thread for Pdeathsig), which this package's
// goleak TestMain would report as a leak.
func TestKapiHelperProcess(t *testing.T) {
	if os.Getenv(kapiHelperEnv) != "1" {
		t.Skip("helper process of BenchmarkUpdateToPlan")
	}
	say := func(m kapiHelperMsg) {
		j, _ := json.Marshal(m)
		fmt.Printf("%s%s\n", kapiHelperMark, j)
	}
	s, err := kapitest.NewServer()
	switch {
	case errors.Is(err, kapitest.ErrUnavailable):
		say(kapiHelperMsg{Skip: err.Error()})
		os.Exit(0)
	case err != nil:
		say(kapiHelperMsg{Err: err.Error()})
		os.Exit(1)
	}
	say(kapiHelperMsg{Host: s.Host, Token: s.Token, CAFile: s.CAFile})
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Stop()
	os.Exit(0) // skip goleak: kapitest's spawn goroutine is still there by design
}

// startKapiHelper starts TestKapiHelperProcess and returns an admin rest.Config for its
// server, which t.Cleanup stops (after the helper's output is drained). It skips t when
// kapitest would skip.
func startKapiHelper(t testing.TB) *rest.Config {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKapiHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), kapiHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	t.Cleanup(func() {
		stdin.Close()
		<-drained
		_ = cmd.Wait()
	})
	var msg *kapiHelperMsg
	var msgErr error
	sc := bufio.NewScanner(stdout)
	for msg == nil && sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), kapiHelperMark); ok {
			msg = new(kapiHelperMsg)
			msgErr = json.Unmarshal([]byte(line), msg)
		}
	}
	go func() { // until the helper exits
		defer close(drained)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	switch {
	case msgErr != nil:
		t.Fatal(msgErr)
	case msg == nil:
		t.Fatal("kapitest helper process exited without starting a server")
	case msg.Skip != "":
		t.Skip(msg.Skip)
	case msg.Err != "":
		t.Fatalf("kapitest: %s", msg.Err)
	}
	return kapitest.RESTConfigFor(msg.Host, msg.Token, msg.CAFile)
}
