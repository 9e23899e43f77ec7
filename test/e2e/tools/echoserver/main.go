// Command echoserver is the e2e bed's realserver: a tiny HTTP server that
// answers every request with its own name, so a client can tell which
// realserver a load-balanced request reached.
//
//	echoserver -name rs1 -addr :80
//
// GET /healthz answers "ok"; GET /client answers "<name>@<client address>\n" (the
// address the connection came from, so a scenario can check that a load balancer kept the
// client's address); every other path answers "<name>\n". Standard
// library only; built with CGO_ENABLED=0 so it runs in the QEMU guest's
// chroot like any host binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	name := flag.String("name", "", "name to answer with (default: the hostname)")
	addr := flag.String("addr", ":80", "TCP address to listen on")
	flag.Parse()
	if *name == "" {
		h, err := os.Hostname()
		if err != nil {
			log.Fatal(err)
		}
		*name = h
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/client", func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Server", *name)
		fmt.Fprintf(w, "%s@%s\n", *name, host)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Server", *name)
		fmt.Fprintln(w, *name)
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("echoserver %s: %v", *name, err)
	}
	log.Printf("echoserver %s listening on %s", *name, ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("echoserver %s: %v", *name, err)
	}
}
