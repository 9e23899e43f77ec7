package reconcile

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestServingVIPs(t *testing.T) {
	held := func(v *VirtualService) { v.Held = true }
	keep := func(v *VirtualService) { v.Keep = true }
	st := makeState(
		withVS("tcp 10.0.0.1:80", dests(dest("10.1.0.1:80", 0), dest("10.1.0.2:80", 2))), // serving
		withVS("tcp 10.0.0.1:443", dests(dest("10.1.0.1:443", 0))),                       // same VIP: counted once
		withVS("tcp 10.0.0.2:80", dests(dest("10.1.0.1:80", 0))),                         // only weight 0
		withVS("tcp 10.0.0.3:80", dests(dest("10.1.0.1:80", 3)), held),                   // held: not healthy
		withVS("tcp 10.0.0.4:80", keep),                                                  // target pending: as before
		withVS("tcp 10.0.0.5:80"),                                                        // no destinations
	)
	want := map[netip.Addr]bool{netip.MustParseAddr("10.0.0.1"): true, netip.MustParseAddr("10.0.0.4"): true}
	if d := cmp.Diff(want, ServingVIPs(st)); d != "" {
		t.Errorf("ServingVIPs (-want +got):\n%s", d)
	}
}

func TestWithheldVIPs(t *testing.T) {
	held := func(v *VirtualService) { v.Held = true }
	st := makeState(
		withVS("tcp 10.0.0.1:80", dests(dest("10.1.0.1:80", 2))),       // serving: not listed
		withVS("tcp 10.0.0.2:80", dests(dest("10.1.0.1:80", 0))),       // weight 0
		withVS("tcp 10.0.0.3:80", dests(dest("10.1.0.1:80", 3)), held), // held
		withVS("tcp 10.0.0.3:443", dests(dest("10.1.0.1:443", 0))),     // held wins the VIP's reason
		withVS("tcp 10.0.0.1:443", dests(dest("10.1.0.1:443", 0))),     // its VIP serves by :80
	)
	want := map[netip.Addr]string{
		netip.MustParseAddr("10.0.0.2"): "no destination with weight above 0",
		netip.MustParseAddr("10.0.0.3"): "every realserver fails its health check (held: forwarding, not announced)",
	}
	if d := cmp.Diff(want, WithheldVIPs(st)); d != "" {
		t.Errorf("WithheldVIPs (-want +got):\n%s", d)
	}
}
