package main

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/extauthz"
	"github.com/leanauth/authstack/internal/testservers"
)

// counted counts the calls a real grpc-go server answered, and the most it
// had in flight at once.
type counted struct {
	authv3.AuthorizationServer
	calls, inFlight, maxInFlight atomic.Int64
}

func (c *counted) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	c.calls.Add(1)
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for m := c.maxInFlight.Load(); n > m && !c.maxInFlight.CompareAndSwap(m, n); m = c.maxInFlight.Load() {
	}
	return c.AuthorizationServer.Check(ctx, req)
}

// serveGRPC serves srv on grpc-go with the authserver's options and extra.
func serveGRPC(t *testing.T, srv authv3.AuthorizationServer, extra ...grpc.ServerOption) (string, *grpc.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(extauthz.ServerOptions(), extra...)...)
	authv3.RegisterAuthorizationServer(g, srv)
	go g.Serve(l)
	t.Cleanup(g.Stop)
	return l.Addr().String(), g
}

// floorGRPC is the gRPC floor on real Redis, with one known token "tok1".
func floorGRPC(t *testing.T) *counted {
	t.Helper()
	r := testservers.Redis(t)
	rdb, err := app.NewRedis(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	if err := seedFloor(context.Background(), r.URL(), []string{"tok1"}, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	return &counted{AuthorizationServer: grpcFloor{rdb}}
}

func TestGRPCLoadCountsAllowedAndDenied(t *testing.T) {
	srv := floorGRPC(t)
	addr, _ := serveGRPC(t, srv)
	res, gs := runGRPCLoad(context.Background(), grpcSpec{name: "t", addr: addr, conns: 16, dur: 500 * time.Millisecond,
		request: func(c int) *authv3.CheckRequest { return checkCall([]string{"tok1", "unknown"}[c%2]) }})
	ok, denied := res.Statuses[200], res.Statuses[401]
	if res.Errors != 0 || ok == 0 || denied == 0 || len(res.Statuses) != 2 {
		t.Fatalf("want only 200s and 401s: %s %v", res, res.ErrorMsg)
	}
	if int64(ok+denied) != srv.calls.Load() {
		t.Fatalf("counted %d answers, the server answered %d", ok+denied, srv.calls.Load())
	}
	if share := float64(ok) / float64(ok+denied); share < 0.3 || share > 0.7 {
		t.Fatalf("allowed share %.2f, want about half (half the slots have the known token)", share)
	}
	if gs.dials != 2 || res.OK != ok || res.P50 <= 0 || res.P99 < res.P50 || res.Elapsed < 500*time.Millisecond {
		t.Fatalf("%d connections (want 2 for 16 calls in flight), stats %s", gs.dials, res)
	}
}

// bigAnswer allows with a 12 KiB header: a few answers use up the
// connection's initial 64 KiB window, one more than a stream's.
type bigAnswer struct{}

func (bigAnswer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-big", Value: strings.Repeat("a", 12<<10)}}}}}}, nil
}

// Flow control: answers far beyond the connection's 64 KiB window and each
// beyond its stream's 4 KiB window arrive, on one connection, without a stall.
func TestGRPCLoadReturnsFlowControlWindows(t *testing.T) {
	srv := &counted{AuthorizationServer: bigAnswer{}}
	addr, _ := serveGRPC(t, srv)
	res, gs := runGRPCLoad(context.Background(), grpcSpec{name: "t", addr: addr, conns: 8, dur: time.Second,
		request:      func(int) *authv3.CheckRequest { return checkCall("x") },
		streamWindow: 4096, connWindow: 65535})
	if res.Errors != 0 || int64(res.OK) != srv.calls.Load() || gs.dials != 1 {
		t.Fatalf("%s %v; server answered %d; %d connections", res, res.ErrorMsg, srv.calls.Load(), gs.dials)
	}
	if gs.dataBytes < 8*65535 || gs.windowUpdates < res.OK*3 {
		t.Fatalf("%d bytes received with %d WINDOW_UPDATEs over %d answers: want 8 connection windows' worth, 3 stream updates per answer",
			gs.dataBytes, gs.windowUpdates, res.OK)
	}
}

// Stream ids: a new connection before they run out, no call lost.
func TestGRPCLoadNewConnectionBeforeStreamIDsRunOut(t *testing.T) {
	srv := floorGRPC(t)
	addr, _ := serveGRPC(t, srv)
	res, gs := runGRPCLoad(context.Background(), grpcSpec{name: "t", addr: addr, conns: 8, dur: 500 * time.Millisecond,
		request: func(int) *authv3.CheckRequest { return checkCall("tok1") }, lastStreamID: 49})
	if res.Errors != 0 || int64(res.OK) != srv.calls.Load() || res.OK <= 25 {
		t.Fatalf("%s %v; server answered %d", res, res.ErrorMsg, srv.calls.Load())
	}
	if want := (res.OK + 24) / 25; gs.dials < want { // stream ids 1, 3, ..., 49: 25 calls a connection
		t.Fatalf("%d calls over %d connections, want at least %d", res.OK, gs.dials, want)
	}
}

// The server's MAX_CONCURRENT_STREAMS: the calls beyond it wait, none fails
// (those sent before its SETTINGS arrived are refused, and sent again).
func TestGRPCLoadHonoursTheStreamLimit(t *testing.T) {
	srv := floorGRPC(t)
	addr, _ := serveGRPC(t, srv, grpc.MaxConcurrentStreams(3))
	res, gs := runGRPCLoad(context.Background(), grpcSpec{name: "t", addr: addr, conns: 8, dur: 500 * time.Millisecond,
		request: func(int) *authv3.CheckRequest { return checkCall("tok1") }})
	if res.Errors != 0 || res.OK == 0 || int64(res.OK) != srv.calls.Load() || gs.dials != 1 {
		t.Fatalf("%s %v; server answered %d; %d connections", res, res.ErrorMsg, srv.calls.Load(), gs.dials)
	}
	if m := srv.maxInFlight.Load(); m > 3 || gs.refused > 8-3 {
		t.Fatalf("%d calls in flight at once, %d refused: the limit of 3 was not honoured once known", m, gs.refused)
	}
}

// A server that goes away: its GOAWAY (graceful stop) or closed connections
// (stop) end the load's calls as errors, not a hang. In a graceful stop the
// client opens no stream after the GOAWAY and hangs up once its calls are
// answered, so no call is lost and the stop completes.
func TestGRPCLoadServerGoesAway(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		t.Run(map[bool]string{true: "GracefulStop", false: "Stop"}[graceful], func(t *testing.T) {
			srv := floorGRPC(t)
			addr, g := serveGRPC(t, srv)
			stopped := make(chan struct{})
			time.AfterFunc(300*time.Millisecond, func() {
				if graceful {
					g.GracefulStop()
				} else {
					g.Stop()
				}
				close(stopped)
			})
			const dur = 2 * time.Second
			t0 := time.Now()
			res, _ := runGRPCLoad(context.Background(), grpcSpec{name: "t", addr: addr, conns: 16, dur: dur,
				request: func(int) *authv3.CheckRequest { return checkCall("tok1") }})
			if took := time.Since(t0); took > dur+5*time.Second {
				t.Fatalf("the load took %s for %s", took, dur)
			}
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
				t.Fatal("the server's stop did not finish: the client kept its connections")
			}
			if res.OK == 0 || res.Errors == 0 || int64(res.OK) > srv.calls.Load() {
				t.Fatalf("want answers, then errors: %s %v; server answered %d", res, res.ErrorMsg, srv.calls.Load())
			}
			if graceful { // the two-step GOAWAY loses no call: only the redials fail
				for msg := range res.ErrorMsg {
					if !strings.Contains(msg, "connection refused") {
						t.Errorf("a call failed in the graceful stop: %s", msg)
					}
				}
			}
			t.Logf("%s %v", res, res.ErrorMsg)
		})
	}
}

func TestCheckAnswer(t *testing.T) {
	for _, c := range []struct {
		resp             *authv3.CheckResponse
		code, httpStatus int
	}{
		{&authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-auth-user-id", Value: "u1"}}}}}}, 0, 0},
		{&authv3.CheckResponse{}, 0, 0},
		{&authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.Unauthenticated), Message: "no"}, HttpResponse: &authv3.CheckResponse_DeniedResponse{
			DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Found}, Body: "x",
				Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "location", Value: "https://a/"}}}}}}, 16, 302},
		{&authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)}, HttpResponse: &authv3.CheckResponse_DeniedResponse{
			DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}}}}, 7, 403},
	} {
		b, err := proto.Marshal(c.resp)
		if err != nil {
			t.Fatal(err)
		}
		code, hs, err := checkAnswer(b)
		if err != nil || code != c.code || hs != c.httpStatus {
			t.Errorf("%v: got %d %d %v, want %d %d", c.resp, code, hs, err, c.code, c.httpStatus)
		}
	}
	if _, _, err := checkAnswer([]byte{0x0a, 0x05, 0x08}); err == nil {
		t.Error("a truncated answer was accepted")
	}
}
