// Package extauthz is the Envoy external authorization gRPC service
// (envoy.service.auth.v3.Authorization/Check) that Envoy Gateway's
// SecurityPolicy extAuth and the HTTPRoute ExternalAuth filter call without
// an HTTP hop. It answers what GET /auth/check answers (authserver/edge
// decides both): OK with the session's headers to set on the request to the
// app and the client's own X-Auth-* headers to remove, or Denied with a 401
// (JSON), a 302 to the sign-in page for a browser, a 403 for a session below
// the required level, or a 503.
package extauthz

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/leanauth/authstack/authserver/edge"
	"github.com/leanauth/authstack/authserver/service"
)

// Server implements the Authorization service.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	Checker *edge.Checker
}

// streamWorkers is how many goroutines serve the checks. Without workers
// grpc-go starts a goroutine per call, whose stack then grows (and is copied)
// several times through the handler and go-redis: 15 % of the server's CPU
// under load (docs/benchmarks.md, "Forward-auth check"). A worker keeps its
// grown stack; calls beyond the workers still get their own goroutine. 64 is
// the concurrency Envoy reaches with a few connections per gateway replica.
const streamWorkers = 64

// ServerOptions are the gRPC server's options (cmd/authbench's gRPC floor
// serves with the same).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.NumStreamWorkers(streamWorkers)}
}

// NewGRPC is a gRPC server with the Authorization service and the standard
// health service (SERVING), for Envoy's and Kubernetes' gRPC probes.
func NewGRPC(c *edge.Checker) *grpc.Server {
	g := grpc.NewServer(ServerOptions()...)
	authv3.RegisterAuthorizationServer(g, &Server{Checker: c})
	healthpb.RegisterHealthServer(g, health.NewServer())
	return g
}

// Serve serves g on ln until ctx ends, then stops it gracefully (in-flight
// checks finish).
func Serve(ctx context.Context, g *grpc.Server, ln net.Listener) error {
	stop := context.AfterFunc(ctx, g.GracefulStop)
	defer stop()
	if err := g.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

var (
	lowerUserID    = strings.ToLower(edge.UserIDHeader)
	lowerEmail     = strings.ToLower(edge.EmailHeader)
	lowerSessionID = strings.ToLower(edge.SessionIDHeader)
	lowerLevel     = strings.ToLower(edge.LevelHeader)
	lowerTime      = strings.ToLower(edge.TimeHeader)
	lowerPrefix    = strings.ToLower(edge.HeaderPrefix)
)

// Check decides one request. Envoy sends header names in lower case, in
// headers or, with encode_raw_headers, in header_map.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	hdr := h.GetHeaders()
	if len(hdr) == 0 && h.GetHeaderMap() != nil {
		hdr = make(map[string]string, len(h.GetHeaderMap().GetHeaders()))
		for _, kv := range h.GetHeaderMap().GetHeaders() {
			v := kv.GetValue()
			if v == "" {
				v = string(kv.GetRawValue())
			}
			if old, ok := hdr[kv.GetKey()]; ok {
				v = old + "," + v
			}
			hdr[kv.GetKey()] = v
		}
	}
	// The required levels: the route's context extension "level" (Envoy's
	// per-route ext_authz settings) and every level in the header the proxy
	// sets (repeated headers arrive joined by commas); all must be met.
	var levels []string
	if v := hdr["x-auth-require-level"]; v != "" {
		levels = strings.Split(v, ",")
		for i := range levels {
			levels[i] = strings.TrimSpace(levels[i])
		}
	}
	if v := req.GetAttributes().GetContextExtensions()["level"]; v != "" {
		levels = append(levels, v)
	}
	r := edge.Request{Authorization: hdr["authorization"], Accept: hdr["accept"], Levels: levels,
		URL: func() string {
			if h.GetScheme() != "" && h.GetHost() != "" && strings.HasPrefix(h.GetPath(), "/") {
				return h.GetScheme() + "://" + h.GetHost() + h.GetPath()
			}
			return ""
		}}
	if c := hdr["cookie"]; c != "" {
		r.Cookies = []string{c}
	}
	d := s.Checker.Decide(ctx, r)
	switch d.Outcome {
	case edge.Allow:
		ok := &authv3.OkHttpResponse{Headers: allowHeaders(d.Session.UserID, d.Session.Email, d.Session.ID,
			d.Session.Level, strconv.FormatInt(d.Session.AuthAt.Unix(), 10))}
		for k := range hdr {
			// Underscores too: servers that read _ as - (CGI, Rack) would see x_auth_user_id as the check's.
			if strings.HasPrefix(strings.ReplaceAll(k, "_", "-"), lowerPrefix) && k != lowerUserID && k != lowerEmail && k != lowerSessionID && k != lowerLevel && k != lowerTime {
				ok.HeadersToRemove = append(ok.HeadersToRemove, k)
			}
		}
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}, nil
	case edge.SignIn:
		return denied(codes.Unauthenticated, typev3.StatusCode_Found, nil, set("location", d.Location)), nil
	}
	var se *service.Error
	if !errors.As(d.Err, &se) {
		se = service.ErrUnavailable
	}
	code := codes.Unauthenticated
	if d.Outcome == edge.Fail {
		code = codes.Unavailable
	}
	if se.Status == http.StatusForbidden {
		code = codes.PermissionDenied
	}
	body := `{"error":{"code":"` + se.Code + `","message":"` + se.Message + `"}}` + "\n"
	headers := []*corev3.HeaderValueOption{set("content-type", "application/json"), set("cache-control", "no-store")}
	if d.Session.Level != "" { // below the required level: say which it has
		headers = append(headers, set(lowerLevel, d.Session.Level))
	}
	return denied(code, typev3.StatusCode(se.Status), []byte(body), headers...), nil
}

func denied(code codes.Code, status typev3.StatusCode, body []byte, headers ...*corev3.HeaderValueOption) *authv3.CheckResponse {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: status}, Headers: headers, Body: string(body),
		}}}
}

// allowHeaders are the five headers of an allowed check, in one allocation
// instead of ten (the hot path).
func allowHeaders(userID, email, sessionID, level, authTime string) []*corev3.HeaderValueOption {
	a := new(struct {
		vals [5]corev3.HeaderValue
		opts [5]corev3.HeaderValueOption
		list [5]*corev3.HeaderValueOption
	})
	for i, kv := range [5][2]string{{lowerUserID, userID}, {lowerEmail, email}, {lowerSessionID, sessionID},
		{lowerLevel, level}, {lowerTime, authTime}} {
		a.vals[i].Key, a.vals[i].Value = kv[0], kv[1]
		a.opts[i].Header = &a.vals[i]
		a.opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		a.list[i] = &a.opts[i]
	}
	return a.list[:]
}

// set is a header that replaces any of the same name.
func set(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
}
