package config

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// BenchmarkParse10k parses, validates and normalizes a generated file of 10,000 services
// (100 VIPs × 100 ports), each with two static backends and an ipvs block: the whole of
// Parse, as the daemon runs it on every reload. "chunks" is how Parse reads a file of that
// size (the services an item at a time, chunks.go), "whole" one parse of the whole file,
// "cached" a parse of the same file again with the Cache of the previous one.
//
//	go test ./config -run='^$' -bench=Parse10k -benchmem -count=5
func BenchmarkParse10k(b *testing.B) {
	data := generateServices(10000)
	for _, way := range []string{"whole", "chunks", "cached"} {
		b.Run(way, func(b *testing.B) {
			defer func(old int) { chunkMin = old }(chunkMin)
			if way == "whole" {
				chunkMin = len(data) + 1
			}
			var cache *Cache
			if way == "cached" {
				cache = &Cache{}
			}
			if _, err := cache.Parse("bench.yaml", data); err != nil {
				b.Fatalf("the generated file does not load: %v", err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			start := cpuTime()
			n := 0
			for b.Loop() {
				if _, err := cache.Parse("bench.yaml", data); err != nil {
					b.Fatal(err)
				}
				n++
			}
			// CPU time of the whole process (every thread, the garbage collector's too) per
			// parse: unlike ns/op, it hardly changes when other work shares the machine.
			b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(n), "cpu-ns/op")
		})
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// generateServices writes a ClusterConfig of n services (at most 10,000 for distinct
// vip:ports) over a pool of 100 VIPs.
func generateServices(services int) []byte {
	const vips = 100
	var buf bytes.Buffer
	buf.WriteString("apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: director-1, role: director}\nvipPool:\n")
	vip := func(i int) string { return fmt.Sprintf("10.54.%d.%d", 200+i/250, 1+i%250) }
	for i := range vips {
		fmt.Fprintf(&buf, "  - %s\n", vip(i))
	}
	buf.WriteString("defaults:\n  protocols: [tcp]\n  ipvs: {scheduler: wrr, forwarding: dr}\nservices:\n")
	for i := range services {
		fmt.Fprintf(&buf, "  - name: svc-%d\n    vip: %s\n    port: %d\n", i, vip(i%vips), 1000+i/vips)
		fmt.Fprintf(&buf, "    backends:\n      - {address: 10.1.%d.%d, weight: 3}\n      - {address: 10.2.%d.%d, weight: 1}\n",
			i/250%250, 1+i%250, i/250%250, 1+i%250)
		buf.WriteString("    ipvs: {scheduler: mh, flags: [mh-port], forwarding: tunnel, upperThreshold: 50000, lowerThreshold: 25000}\n")
	}
	return buf.Bytes()
}

// BenchmarkServiceItems parses the service items of BenchmarkParse10k's file (block
// mappings holding flow ones) into trees, by quickItem or by a yaml.v3 stream (chunks.go):
// the part of a parse quickItem replaces.
//
//	go test ./config -run='^$' -bench=ServiceItems -benchmem
func BenchmarkServiceItems(b *testing.B) {
	data := generateServices(10000)
	_, list, _, _, ok := splitServices(data)
	if !ok {
		b.Fatal("the generated file is not cut into items")
	}
	b.Run("quick", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			scratch := &quickScratch{}
			for _, c := range list.items {
				if quickItem(data[c.start:c.end], c.line, scratch) == nil {
					b.Fatal("quickItem refuses an item")
				}
			}
		}
	})
	b.Run("yaml.v3", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			next := list.stream(0, len(list.items), func(int) bool { return true })
			for range list.items {
				if next() == nil {
					b.Fatal("yaml.v3 refuses an item")
				}
			}
		}
	})
}
