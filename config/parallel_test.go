package config

import (
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParallelMatchesSerial loads a long file with mistakes spread through it on every CPU and
// on one: the findings and the effective config must be the same.
func TestParallelMatchesSerial(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one CPU: nothing runs in parallel")
	}
	text := strings.Split(string(generateServices(2000)), "\n")
	for i := range text {
		switch {
		case i%4001 < 4 && strings.HasPrefix(text[i], "    port: "):
			text[i] = "    port: 70000"
		case i%3001 < 4 && strings.HasPrefix(text[i], "    vip: "):
			text[i] = "    vip: 10.99.0.1"
		case i%5003 < 8 && strings.HasPrefix(text[i], "    ipvs: "):
			text[i] = "    ipvs: {scheduler: fastest, flags: [sh-port], weight: 1}"
		}
	}
	data := []byte(strings.Join(text, "\n"))
	load := func(procs int) (*Config, *Errors) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		c, err := Parse("long.yaml", data)
		e, _ := err.(*Errors)
		return c, e
	}
	parC, parE := load(runtime.GOMAXPROCS(0))
	serC, serE := load(1)
	if parE == nil || serE == nil || len(serE.Errors) < 3 {
		t.Fatalf("want errors from both: %v / %v", parE, serE)
	}
	if d := cmp.Diff(lines(serE.Errors), lines(parE.Errors)); d != "" {
		t.Errorf("errors (-serial +parallel):\n%s", d)
	}
	if d := cmp.Diff(lines(serE.Warnings), lines(parE.Warnings)); d != "" {
		t.Errorf("warnings (-serial +parallel):\n%s", d)
	}
	if parC != nil || serC != nil {
		t.Error("a file with errors loaded")
	}

	good := generateServices(2000)
	par, _ := Parse("good.yaml", good)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ser, _ := Parse("good.yaml", good)
	if !reflect.DeepEqual(par, ser) {
		t.Error("the effective config differs between parallel and serial loading")
	}
}
