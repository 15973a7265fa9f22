package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// floorKeyPrefix prefixes the keys the floor server reads.
const floorKeyPrefix = "authbench:floor:"

// runFloor is the "floor" subcommand: a bare net/http server whose only
// handler does one Redis GET of the bearer token's key and writes the value.
// It is what a session check cannot beat; authbench runs it as a separate
// process, like the authserver, so both compete for the CPU the same way.
func runFloor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	redisURL := fs.String("redis", "", "Redis URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return fmt.Errorf("parsing -redis: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: floorHandler(rdb), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// floorHandler serves GET /floor: one Redis GET of the bearer token's key.
// and GET /app/..., the protected app of the check phase (edge.go).
func floorHandler(rdb *redis.Client) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /floor", func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, `{"error":{"code":"unauthorized","message":"no token"}}`, http.StatusUnauthorized)
			return
		}
		v, err := rdb.Get(r.Context(), floorKeyPrefix+tok).Bytes()
		if errors.Is(err, redis.Nil) {
			http.Error(w, `{"error":{"code":"unauthorized","message":"unknown token"}}`, http.StatusUnauthorized)
			return
		}
		if err != nil {
			http.Error(w, `{"error":{"code":"unavailable","message":"redis"}}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(v)
	})
	// The app behind the proxies of the check phase: a fixed answer, so that
	// the proxy and the check are all that differ between its loads.
	mux.HandleFunc("GET /app/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	return mux
}
