package daemon

import (
	"testing"

	"github.com/ravel-lb/ravel/config"
)

// TestPeriodicARPYieldsToTheLoop: the periodic announcement of 1,000 VIPs takes a chunk per
// turn of the director's loop, not all of them at once (at 10,000 VIPs in the QEMU guest,
// one turn held every EndpointSlice change for up to 1.1 s every 5 s), and the round
// announces every VIP exactly once.
func TestPeriodicARPYieldsToTheLoop(t *testing.T) {
	cfg, err := config.Parse("arp.yaml", []byte(scaleConfig(1000, 1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	f := newFakes()
	garp := &fakeAnnouncer{}
	d, _, _ := newTestDirector(t, cfg, f, garp)
	d.FullSync()
	if got := len(garp.take()); got != 1000 {
		t.Fatalf("the first sync announced %d VIPs, want 1000", got)
	}

	d.startARPRound()
	first := garp.take()
	if len(first) == 0 || len(first) > arpChunk {
		t.Fatalf("one turn of the loop announced %d VIPs, want 1 to %d", len(first), arpChunk)
	}
	seen := map[string]int{}
	for _, v := range first {
		seen[v]++
	}
	turns := 1
	for len(d.arpMore) > 0 {
		<-d.arpMore
		d.announceChunk()
		turns++
		for _, v := range garp.take() {
			seen[v]++
		}
	}
	if len(seen) != 1000 || turns < 1000/arpChunk {
		t.Fatalf("the round announced %d distinct VIPs in %d turns, want 1000 in at least %d", len(seen), turns, 1000/arpChunk)
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("%s announced %d times in one round", v, n)
		}
	}
}
