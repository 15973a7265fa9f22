// Command netcheck is the real-node suite's probe image (test/realnode): a
// static binary run as a pod, so a test can send real traffic from inside the
// cluster without kubectl exec.
//
//	netcheck serve :8080
//
// serves on that address:
//
//	GET /                      "ok <hostname>"
//	GET /dial?addr=HOST:PORT   opens a TCP connection from this pod: 200 "connected",
//	                           or 502 with the error (refused, timed out, no such host)
//	GET /get?url=URL           an HTTP GET from this pod: 200 with the body, or 502
//	GET /resolve?name=NAME     the addresses DNS gives for NAME, or 502
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const timeout = 3 * time.Second

func main() {
	if len(os.Args) != 3 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: netcheck serve ADDR")
		os.Exit(2)
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ok %s\n", host)
	})
	mux.HandleFunc("GET /dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), timeout)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c.Close()
		fmt.Fprintln(w, "connected")
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		hc := &http.Client{Timeout: timeout}
		resp, err := hc.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("status %d: %s", resp.StatusCode, body), http.StatusBadGateway)
			return
		}
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /resolve", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, r.URL.Query().Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, strings.Join(addrs, " "))
	})
	srv := &http.Server{Addr: os.Args[2], Handler: mux, ReadHeaderTimeout: timeout}
	log.Fatal(srv.ListenAndServe())
}
