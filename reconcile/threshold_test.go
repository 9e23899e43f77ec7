package reconcile

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ravel-lb/ravel/netops"
)

func TestThresholdsSplitByWeight(t *testing.T) {
	type dt struct {
		weight       int
		upper, lower uint32
	}
	tests := []struct {
		name         string
		upper, lower int
		weights      []int
		want         []dt // in backend order 10.0.1.1, 10.0.1.2, ...
		clamped      bool
	}{
		{name: "3:1 of 100/40", upper: 100, lower: 40, weights: []int{3, 1},
			want: []dt{{3, 75, 30}, {1, 25, 10}}},
		{name: "rounding up: 10 over 1,1,1", upper: 10, lower: 5, weights: []int{1, 1, 1},
			want: []dt{{1, 4, 2}, {1, 4, 2}, {1, 4, 2}}},
		{name: "uneven: 7/3 over 2,1", upper: 7, lower: 3, weights: []int{2, 1},
			want: []dt{{2, 5, 2}, {1, 3, 1}}},
		{name: "weight 0 gets no threshold", upper: 100, lower: 50, weights: []int{1, 0},
			want: []dt{{1, 100, 50}, {0, 0, 0}}},
		{name: "no thresholds", upper: 0, lower: 0, weights: []int{3, 1},
			want: []dt{{3, 0, 0}, {1, 0, 0}}},
		{name: "upper only", upper: 9, lower: 0, weights: []int{1, 2},
			want: []dt{{1, 3, 0}, {2, 6, 0}}},
		{name: "clamped to 65535", upper: 200000, lower: 1, weights: []int{1, 1},
			want: []dt{{1, netops.MaxWeight, 1}, {1, netops.MaxWeight, 1}}, clamped: true},
		{name: "both clamped", upper: 300000, lower: 200000, weights: []int{1},
			want: []dt{{1, netops.MaxWeight, netops.MaxWeight}}, clamped: true},
		{name: "at the maximum: not clamped", upper: 2 * netops.MaxWeight, lower: 2, weights: []int{1, 1},
			want: []dt{{1, netops.MaxWeight, 1}, {1, netops.MaxWeight, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []svcOpt{withProtocols("tcp", "udp"), withThresholds(tt.upper, tt.lower)}
			for i, w := range tt.weights {
				opts = append(opts, withBackend(fmt.Sprintf("10.0.1.%d", i+1), w))
			}
			cfg := makeConfig(t, withService("web", "10.0.0.1:80", opts...))
			st, notes := Desired(cfg, nil, director)
			for _, proto := range []string{"tcp", "udp"} {
				vs := st.Services[skey(proto+" 10.0.0.1:80")]
				var got []dt
				for i := range tt.weights {
					d := vs.Dests[dkey(fmt.Sprintf("10.0.1.%d:80", i+1))]
					got = append(got, dt{d.Weight, d.Upper, d.Lower})
				}
				if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(dt{})); d != "" {
					t.Errorf("%s (-want +got):\n%s", proto, d)
				}
			}
			var clamped []Note
			for _, n := range notes {
				if n.Kind == "threshold-clamped" {
					clamped = append(clamped, n)
				}
			}
			switch {
			case tt.clamped && len(clamped) != 1:
				t.Errorf("want one threshold-clamped note for the service (not one per protocol), got %v", notes)
			case tt.clamped && clamped[0].Service != "web":
				t.Errorf("threshold-clamped note names %q, want web", clamped[0].Service)
			case !tt.clamped && len(clamped) != 0:
				t.Errorf("unexpected threshold-clamped note: %v", clamped)
			}
			// Whatever the split, the kernel must accept it: lower never above upper.
			for _, vs := range st.Services {
				for _, d := range vs.Dests {
					if d.Lower > d.Upper {
						t.Errorf("%s: lower %d above upper %d", d.DestKey, d.Lower, d.Upper)
					}
				}
			}
		})
	}
}

func TestThresholdsKubernetes(t *testing.T) {
	web := ref("default", "web", "http")
	cfg := makeConfig(t, withKubernetes(false),
		withService("web", "10.0.0.1:80", withKube("default", "web", "http"), withThresholds(100, 20)))
	snap := makeSnapshot(withNode("n1", "10.1.0.1"), withPods(web, "n1", 3, 0),
		withNode("n2", "10.1.0.2"), withPods(web, "n2", 1, 0),
		withNode("n3", "10.1.0.3"))
	st, _ := Desired(cfg, snap, director)
	want := makeState(withVS("tcp 10.0.0.1:80", named("web"), dests(
		dest("10.1.0.1:80", 3, thr(75, 15)),
		dest("10.1.0.2:80", 1, thr(25, 5)),
		dest("10.1.0.3:80", 0))))
	if d := cmp.Diff(want, st, cmpOpts); d != "" {
		t.Errorf("Desired (-want +got):\n%s", d)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		threshold, weight, total int
		want                     uint32
		clamped                  bool
	}{
		{100, 3, 4, 75, false},
		{100, 1, 4, 25, false},
		{10, 1, 3, 4, false},
		{1, 1, 1000, 1, false},
		{0, 1, 1, 0, false},
		{100, 0, 1, 0, false},
		{100, 1, 0, 0, false},
		{-5, 1, 1, 0, false},
		{65535, 1, 1, 65535, false},
		{65536, 1, 1, 65535, true},
		{1 << 40, netops.MaxWeight, netops.MaxWeight, 65535, true},
	}
	for _, tt := range tests {
		got, clamped := split(tt.threshold, tt.weight, tt.total)
		if got != tt.want || clamped != tt.clamped {
			t.Errorf("split(%d, %d, %d) = %d, %t; want %d, %t", tt.threshold, tt.weight, tt.total, got, clamped, tt.want, tt.clamped)
		}
	}
}
