package chains

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/internal/golden"
	"github.com/ravel-lb/ravel/netops"
)

func twoServices(opts ...svcOpt) []netops.LocalService {
	return []netops.LocalService{
		makeService("default/web:http", "10.0.0.1:80", append([]svcOpt{withEndpoints("10.244.1.2:8080", "10.244.1.3:8080")}, opts...)...),
		makeService("default/api:http", "10.0.0.2:80", withEndpoints("10.244.1.4:8080")),
	}
}

func TestDiff(t *testing.T) {
	base := Render(realserver, twoServices())
	svcChain := func(vipPort string) string { return ServiceChain("RAVEL", makeService("", vipPort).Key) }
	zoneOpts := Options{Chain: "RAVEL", DirectorInterfaces: []string{"eth0", "tunl0"}}
	withZoneService := Render(zoneOpts, append(twoServices(), makeService("default/db:pg", "10.0.0.3:5432", withZone("10.244.2.5:5432/3", "10.244.3.5:5432/1"))))
	zsvChain := ZoneServiceChain("RAVEL", makeService("", "10.0.0.3:5432").Key)
	tests := []struct {
		name   string
		cur    Ruleset
		want   Ruleset
		write  []string // names of Write
		delete []string
		golden string // compare Patch.String with testdata/<golden>.golden
		empty  bool
	}{
		{name: "from nothing", cur: Ruleset{Prefix: "RAVEL"}, want: base,
			write: []string{"RAVEL", "RAVEL-MASQ", "RAVEL-POSTROUTING", svcChain("10.0.0.1:80"), svcChain("10.0.0.2:80")}, golden: "patch-create"},
		{name: "unchanged", cur: base, want: base, empty: true},
		{name: "reordered input is unchanged", cur: base,
			want:  Render(realserver, []netops.LocalService{twoServices()[1], makeService("default/web:http", "10.0.0.1:80", withEndpoints("10.244.1.3:8080", "10.244.1.2:8080"))}),
			empty: true},
		{name: "one endpoint removed", cur: base,
			want:  Render(realserver, []netops.LocalService{makeService("default/web:http", "10.0.0.1:80", withEndpoints("10.244.1.3:8080")), twoServices()[1]}),
			write: []string{svcChain("10.0.0.1:80")}, golden: "patch-endpoint-removed"},
		{name: "service removed", cur: base, want: Render(realserver, twoServices()[:1]),
			write: []string{"RAVEL"}, delete: []string{svcChain("10.0.0.2:80")}, golden: "patch-service-removed"},
		// The masquerade chains stay: the hairpin rules still jump to RAVEL-MASQ.
		{name: "masquerade off", cur: Render(Options{Chain: "RAVEL", Masquerade: true}, twoServices()), want: base,
			write: []string{svcChain("10.0.0.1:80"), svcChain("10.0.0.2:80")}, golden: "patch-masquerade-off"},
		{name: "zone service added", cur: base, want: withZoneService,
			write: []string{"RAVEL", "RAVEL-ZONE", zsvChain}, golden: "patch-zone-added"},
		{name: "zone unchanged", cur: withZoneService, want: withZoneService, empty: true},
		{name: "zone target weight changed", cur: withZoneService,
			want:  Render(zoneOpts, append(twoServices(), makeService("default/db:pg", "10.0.0.3:5432", withZone("10.244.2.5:5432/1", "10.244.3.5:5432/1")))),
			write: []string{zsvChain}, golden: "patch-zone-weight"},
		{name: "zone service gets a local endpoint", cur: withZoneService,
			want:  Render(zoneOpts, append(twoServices(), makeService("default/db:pg", "10.0.0.3:5432", withEndpoints("10.244.1.5:5432")))),
			write: []string{"RAVEL", svcChain("10.0.0.3:5432")}, delete: []string{"RAVEL-ZONE", zsvChain}, golden: "patch-zone-local"},
		{name: "cleanup", cur: Render(Options{Chain: "RAVEL", Masquerade: true}, twoServices()), want: Ruleset{Prefix: "RAVEL"},
			delete: []string{"RAVEL", "RAVEL-MASQ", "RAVEL-POSTROUTING", svcChain("10.0.0.1:80"), svcChain("10.0.0.2:80")},
			golden: "patch-cleanup"},
		{name: "jumps repaired", cur: Parse("RAVEL", nodeSave), want: Render(realserver, nil),
			write: []string{"RAVEL"}, delete: []string{"RAVEL-SVC-AAAAAAAAAAAA", "RAVEL-SVC-EMPTY"}, golden: "patch-jumps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Diff(tt.cur, tt.want)
			if p.Empty() != tt.empty {
				t.Errorf("Empty() = %v, want %v:\n%s", p.Empty(), tt.empty, p)
			}
			var write []string
			for _, c := range p.Write {
				write = append(write, c.Name)
			}
			if d := cmp.Diff(tt.write, write); d != "" {
				t.Errorf("Write (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.delete, p.Delete); d != "" {
				t.Errorf("Delete (-want +got):\n%s", d)
			}
			if tt.golden != "" {
				golden.Check(t, tt.golden, p.String())
			}
		})
	}
}

func TestDiffJumps(t *testing.T) {
	want := Render(realserver, nil)
	p := Diff(Parse("RAVEL", nodeSave), want)
	if d := cmp.Diff([]Jump{
		{From: "PREROUTING", Rule: `-m comment --comment "old -j RAVEL" -j RAVEL`}, // not ours any more
		{From: "POSTROUTING", Rule: "-g RAVEL-POSTROUTING"},                        // masquerade is off
	}, p.DelJumps); d != "" {
		t.Errorf("DelJumps (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]Jump{{From: "PREROUTING", Rule: "-j RAVEL"}}, p.MoveJumps); d != "" {
		t.Errorf("MoveJumps (-want +got):\n%s", d)
	}
	if len(p.AddJumps) != 0 {
		t.Errorf("AddJumps = %v, want none", p.AddJumps)
	}

	// Duplicates: all but the last are deleted; a missing one is added.
	dup := want
	dup.Jumps = []Jump{{From: "PREROUTING", Rule: "-j RAVEL"}, {From: "PREROUTING", Rule: "-j RAVEL"}}
	p = Diff(dup, want)
	if d := cmp.Diff([]Jump{{From: "PREROUTING", Rule: "-j RAVEL"}}, p.DelJumps); d != "" {
		t.Errorf("DelJumps of duplicates (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]Jump{{From: "OUTPUT", Rule: "-j RAVEL"}}, p.AddJumps); d != "" {
		t.Errorf("AddJumps (-want +got):\n%s", d)
	}
	golden.Check(t, "patch-duplicate-jumps", p.String())
}
