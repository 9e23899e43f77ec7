// Command nsproxy lets a process in a network namespace reach a TCP server on the host's
// loopback: it listens on an address INSIDE the namespace and forwards each connection to an
// address in its own (the host's) namespace.
//
//	nsproxy -netns /run/netns/NAME -listen 127.0.0.1:PORT -to 127.0.0.1:PORT
//
// bench/rss.sh runs `ravel run` in a throwaway namespace, where 127.0.0.1 is the namespace's
// own loopback; with nsproxy the kubeconfig written for the host (https://127.0.0.1:PORT) works
// unchanged there, and nothing of the host's network (addresses, routes, iptables, sysctls) is
// touched. A socket belongs to the namespace it was created in: the listener is opened on an
// OS thread switched into the namespace, and the connections to the target are dialled from
// threads that never were.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

func main() {
	nsPath := flag.String("netns", "", "network namespace to listen in (e.g. /run/netns/NAME)")
	listen := flag.String("listen", "", "address to listen on inside the namespace")
	to := flag.String("to", "", "address to forward to, in nsproxy's own namespace")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("nsproxy: ")
	if *nsPath == "" || *listen == "" || *to == "" {
		flag.Usage()
		os.Exit(2)
	}
	ln, err := listenIn(*nsPath, *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go forward(c, *to)
	}
}

// listenIn opens a TCP listener on addr inside the namespace at nsPath.
func listenIn(nsPath, addr string) (net.Listener, error) {
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	runtime.LockOSThread()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	ln, lerr := net.Listen("tcp", addr)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// This thread would stay in the namespace and could dial from there: give up.
		log.Fatalf("back to the host namespace: %v", err)
	}
	runtime.UnlockOSThread()
	return ln, lerr
}

func forward(c net.Conn, to string) {
	defer c.Close()
	u, err := net.Dial("tcp", to)
	if err != nil {
		log.Print(err)
		return
	}
	defer u.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(u, c)
		u.(*net.TCPConn).CloseWrite()
	})
	_, _ = io.Copy(c, u)
	c.(*net.TCPConn).CloseWrite()
	wg.Wait()
}
