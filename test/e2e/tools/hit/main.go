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
// Exit status: 0 when every request succeeded (or with -allow-fail), 1 when
// any failed, 2 on bad usage. Standard library only.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
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
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: hit [-n N] [-c C] [-timeout D] [-allow-fail] [-v] URL\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *n < 1 || *parallel < 1 {
		flag.Usage()
		os.Exit(2)
	}
	url := flag.Arg(0)

	client := &http.Client{
		Timeout: *timeout,
		// A new connection per request: keep-alive would pin every
		// request to the first realserver chosen.
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}

	var (
		mu     sync.Mutex
		counts = map[string]int{}
		failed int
		wg     sync.WaitGroup
	)
	jobs := make(chan int)
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				name, err := get(client, url)
				mu.Lock()
				if err != nil {
					failed++
					if *verbose {
						fmt.Fprintf(os.Stderr, "hit: %v\n", err)
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
