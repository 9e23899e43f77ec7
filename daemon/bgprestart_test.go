package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBGPRestartMark(t *testing.T) {
	m := BGPRestartMark{Path: filepath.Join(t.TempDir(), "run", "bgp-restart-x")}
	now := time.Unix(1_800_000_000, 0)
	if ok, err := m.Take(now); ok || err != nil {
		t.Fatalf("no mark: Take = %v, %v; want false, nil", ok, err)
	}
	if err := m.Leave(now.Add(120 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Take(now.Add(119 * time.Second)); !ok || err != nil {
		t.Fatalf("within the restart time: Take = %v, %v; want true, nil", ok, err)
	}
	if _, err := os.Stat(m.Path); !os.IsNotExist(err) {
		t.Errorf("Take left the mark behind (%v): the next start would restart gracefully again", err)
	}
	if err := m.Leave(now.Add(120 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Take(now.Add(121 * time.Second)); ok || err != nil {
		t.Fatalf("after the restart time: Take = %v, %v; want false, nil", ok, err)
	}
	if err := os.WriteFile(m.Path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Take(now); ok || err == nil {
		t.Fatalf("an unreadable mark: Take = %v, %v; want false and an error", ok, err)
	}
}
