package netnstest

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ravel-lb/ravel/netops"
)

// Serve answers every TCP connection on addr (":9000", "198.18.0.1:9000", "[::]:9000"), in
// namespace ns, with "name remote-address\n", until t ends. The listening socket is opened
// on a thread inside ns and stays there; the goroutine that accepts can run anywhere.
func Serve(t testing.TB, ns, addr, name string) {
	t.Helper()
	var ln net.Listener
	err := netops.InNetns(Path(ns), func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
			c.Close()
		}
	}()
}

// Hit makes n TCP connections to at from namespace ns, one after the other, and counts the
// answers of Serve's servers keyed by "name remote-ip": which server answered, and the source
// address it saw. Any failure fails t.
func Hit(t testing.TB, ns string, at netip.AddrPort, n int) map[string]int {
	t.Helper()
	got, err := Dial(ns, at, n)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Dial is Hit returning the first failure (a refused connection, say: test it with
// errors.Is(err, syscall.ECONNREFUSED)) with the answers counted until then.
func Dial(ns string, at netip.AddrPort, n int) (map[string]int, error) {
	got := map[string]int{}
	err := netops.InNetns(Path(ns), func() error {
		for i := range n {
			c, err := net.DialTimeout("tcp", at.String(), 5*time.Second)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err != nil {
				return fmt.Errorf("connection %d: read: %w", i, err)
			}
			name, remote, _ := strings.Cut(strings.TrimSpace(line), " ")
			ap, err := netip.ParseAddrPort(remote)
			if err != nil {
				return fmt.Errorf("connection %d: answer %q: %w", i, line, err)
			}
			got[name+" "+ap.Addr().String()]++
		}
		return nil
	})
	return got, err
}
