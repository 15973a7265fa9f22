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

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/redis/go-redis/v9"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/extauthz"
)

// floorKeyPrefix prefixes the keys the floor server reads.
const floorKeyPrefix = "authbench:floor:"

// runFloor is the "floor" subcommand: a bare net/http server whose only
// handler does one Redis GET of the bearer token's key and writes the value.
// It is what a session check cannot beat; authbench runs it as a separate
// process, like the authserver, so both compete for the CPU the same way.
// It has the authserver's Redis client (app.NewRedis), HTTP server settings
// (app.NewAPIServer: the timeouts cost a deadline per request) and gRPC server
// options (extauthz.ServerOptions), so that a ratio to the floor measures the
// authserver's handlers, not its configuration.
func runFloor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	grpcAddr := fs.String("grpc-addr", "", "listen address of the gRPC floor (ext_authz Check doing one Redis GET); empty: none")
	redisURL := fs.String("redis", "", "Redis URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The authserver's Go runtime settings too (GOGC 400 under a 32 MiB soft
	// limit, no heap profiling): with Go's defaults the floor's collector
	// took 6.5 % of its CPU against the authserver's 1.8 %, a handicap of
	// the floor, not a cost of the handlers (docs/benchmarks.md, "Session 7:
	// the session path").
	app.SetResources(&config.Config{}, "/sys/fs/cgroup")
	rdb, err := app.NewRedis(*redisURL)
	if err != nil {
		return fmt.Errorf("-redis: %w", err)
	}
	defer rdb.Close()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *addr, err)
	}
	srv := app.NewAPIServer(floorHandler(rdb))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *grpcAddr != "" {
		gl, err := net.Listen("tcp", *grpcAddr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", *grpcAddr, err)
		}
		g := grpc.NewServer(extauthz.ServerOptions()...)
		authv3.RegisterAuthorizationServer(g, grpcFloor{rdb})
		go g.Serve(gl)
		defer g.Stop()
	}
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
func floorHandler(rdb redis.UniversalClient) http.Handler {
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

// grpcFloor is the floor of the gRPC check: the ext_authz Check that does
// one Redis GET of the bearer token's key and answers OK without headers
// (a denial carries the HTTP status, as the authserver's),
// on grpc-go with the authserver's server options. What grpc-go and
// protobuf cost, apart from anything the authserver does.
type grpcFloor struct {
	rdb redis.UniversalClient
}

func (f grpcFloor) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	tok, _ := strings.CutPrefix(req.GetAttributes().GetRequest().GetHttp().GetHeaders()["authorization"], "Bearer ")
	err := f.rdb.Get(ctx, floorKeyPrefix+tok).Err()
	if err == nil {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)}}, nil
	}
	// Denied as the authserver denies: the HTTP status Envoy answers with.
	code, status := codes.Unavailable, typev3.StatusCode_ServiceUnavailable
	if errors.Is(err, redis.Nil) {
		code, status = codes.Unauthenticated, typev3.StatusCode_Unauthorized
	}
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code)}, HttpResponse: &authv3.CheckResponse_DeniedResponse{
		DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: status}}}}, nil
}
