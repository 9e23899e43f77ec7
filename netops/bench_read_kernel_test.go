package netops

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
)

// BenchmarkKernelFullRead compares the two ways of reading ravel's IPVS state on the real
// kernel (issue 11, item 10): 1,000 services × 20 destinations, half of them at weight 0.
//
//   - per-dest: Services, then per service Destinations (a GetService and a dump) and, per
//     weight-0 destination, DestStats (another GetService and dump of the whole service): what
//     ReadActual did before.
//   - one-dump: Services, then one ListedDestinations per service, counters included: what
//     ReadActual does now.
//
// It reports netlink requests per read and ns per read. Run it in the guest:
//
//	go test -c -o /tmp/netops.test ./netops/
//	test/e2e/guest/run.sh /tmp/netops.test -test.run '^$' -test.bench KernelFullRead -test.benchtime 3x
func BenchmarkKernelFullRead(b *testing.B) {
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		b.Skip("kernel has no IPVS: run in the QEMU guest")
	}
	ns := newTestNetns(b, true)
	k, err := NewIPVSInNetns(ns.path)
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	const services, dests = 1000, 20
	for i := range services {
		key := ServiceKey{VIP: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80, Proto: TCP}
		if err := k.AddService(Service{ServiceKey: key, Scheduler: "wrr"}); err != nil {
			b.Fatal(err)
		}
		for j := range dests {
			d := Destination{DestKey: DestKey{Addr: netip.AddrFrom4([4]byte{10, 2, byte(j), 1}), Port: 80}, Weight: j % 2, Forward: ForwardDR}
			if err := k.AddDestination(key, d); err != nil {
				b.Fatal(fmt.Errorf("service %d dest %d: %w", i, j, err))
			}
		}
	}
	b.Run("per-dest", func(b *testing.B) {
		before := k.Requests()
		for b.Loop() {
			svcs, err := k.Services()
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range svcs {
				ds, err := k.Destinations(s.ServiceKey)
				if err != nil {
					b.Fatal(err)
				}
				for _, d := range ds {
					if d.Weight == 0 {
						if _, err := k.DestStats(s.ServiceKey, d.DestKey); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
		}
		b.ReportMetric(float64(k.Requests()-before)/float64(b.N), "requests/read")
	})
	b.Run("one-dump", func(b *testing.B) {
		before := k.Requests()
		for b.Loop() {
			svcs, err := k.Services()
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range svcs {
				if _, _, err := k.ListedDestinations(s.ServiceKey); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(k.Requests()-before)/float64(b.N), "requests/read")
	})
}
