// Command hit is the e2e bed's client: it makes N HTTP GET requests to a
// URL, each on a fresh TCP connection (so a load balancer schedules each one
// anew), and counts the answers by the name the server answered with
// (test/e2e/tools/echoserver answers its name).
//
//	hit -n 80 http://10.0.0.100/
//
// Output, one line per answering server, sorted by name, then the failures:
//
//	rs1 60
//	rs2 20
//	failed 0
//
// With -source, request i binds the i-th source address (cycling through
// the list), so that a source-hashing scheduler sees many clients:
//
//	hit -n 200 -source 10.0.0.150-10.0.0.199 http://10.0.0.100/
//
// and one more line counts the source addresses with a failed request:
//
//	failed-sources 0
//
// Exit status: 0 when every request succeeded (or with -allow-fail), 1 when
// any failed, 2 on bad usage. Standard library only.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 1, "number of requests")
	parallel := flag.Int("c", 1, "requests in flight at once")
	timeout := flag.Duration("timeout", 5*time.Second, "timeout of each request")
	allowFail := flag.Bool("allow-fail", false, "exit 0 even if requests failed")
	verbose := flag.Bool("v", false, "print each failure's error on stderr")
	source := flag.String("source", "", "source addresses, request i binding the i-th in turn: A,B,... or FIRST-LAST (IPv4)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: hit [-n N] [-c C] [-timeout D] [-allow-fail] [-v] [-source ADDRS] URL\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *n < 1 || *parallel < 1 {
		flag.Usage()
		os.Exit(2)
	}
	url := flag.Arg(0)
	sources, err := parseSources(*source)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hit: -source: %v\n", err)
		os.Exit(2)
	}
	// One client per source address (one without -source): each binds its
	// address on every new connection.
	clients := make([]*http.Client, max(len(sources), 1))
	for i := range clients {
		d := &net.Dialer{Timeout: *timeout}
		if len(sources) > 0 {
			d.LocalAddr = &net.TCPAddr{IP: sources[i].AsSlice()}
		}
		clients[i] = &http.Client{
			Timeout: *timeout,
			// A new connection per request: keep-alive would pin every
			// request to the first realserver chosen.
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, DialContext: d.DialContext},
		}
	}

	var (
		mu        sync.Mutex
		counts    = map[string]int{}
		failed    int
		failedSrc = map[int]bool{}
		wg        sync.WaitGroup
	)
	jobs := make(chan int)
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c := i % len(clients)
				name, err := get(clients[c], url)
				mu.Lock()
				if err != nil {
					failed++
					failedSrc[c] = true
					if *verbose {
						if len(sources) > 0 {
							fmt.Fprintf(os.Stderr, "hit: from %s: %v\n", sources[c], err)
						} else {
							fmt.Fprintf(os.Stderr, "hit: %v\n", err)
						}
					}
				} else {
					counts[name]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < *n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Printf("%s %d\n", k, counts[k])
	}
	fmt.Printf("failed %d\n", failed)
	if len(sources) > 0 {
		fmt.Printf("failed-sources %d\n", len(failedSrc))
	}
	if failed > 0 && !*allowFail {
		os.Exit(1)
	}
}

func get(client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: status %s", url, resp.Status)
	}
	name := strings.TrimSpace(string(body))
	if name == "" || strings.ContainsAny(name, " \n") {
		return "", fmt.Errorf("%s: unexpected answer %q", url, name)
	}
	return name, nil
}

// parseSources reads -source: "" (none), a comma-separated list, or an
// inclusive range FIRST-LAST of IPv4 addresses.
func parseSources(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	if first, last, ok := strings.Cut(s, "-"); ok {
		a, err := netip.ParseAddr(first)
		if err != nil {
			return nil, err
		}
		b, err := netip.ParseAddr(last)
		if err != nil {
			return nil, err
		}
		if !a.Is4() || !b.Is4() || b.Less(a) {
			return nil, fmt.Errorf("%q: want FIRST-LAST, IPv4, FIRST <= LAST", s)
		}
		var out []netip.Addr
		for ; a.Compare(b) <= 0 && len(out) < 65536; a = a.Next() {
			out = append(out, a)
		}
		return out, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
