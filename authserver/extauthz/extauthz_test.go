package extauthz_test

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/testservers"
)

const browserAccept = "text/html,application/xhtml+xml,*/*;q=0.8"

func check(t *testing.T, c authv3.AuthorizationClient, headers map[string]string) *authv3.CheckResponse {
	t.Helper()
	res, err := c.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Scheme: "https", Host: "shop.apps.authstack.test", Path: "/cart?item=7", Headers: headers,
		}},
	}})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

func headerValues(hs []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			m["bad append action for "+h.GetHeader().GetKey()] = h.GetAppendAction().String()
		}
		m[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return m
}

// The Envoy ext_authz gRPC Check of a real authserver (real PostgreSQL and
// Redis), called with the upstream Envoy Go types: the decisions of
// GET /auth/check, in Envoy's terms.
func TestCheck(t *testing.T) {
	t.Parallel()
	port := testservers.FreePort(t)
	e := authtest.Start(t, authtest.Options{NoPooler: true, Vars: map[string]string{
		"AUTH_GRPC_PORT":      strconv.Itoa(port),
		"AUTH_SIGNIN_URL":     "https://login.authstack.test/signin",
		"AUTH_REDIRECT_HOSTS": "*.apps.authstack.test",
	}})
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := authv3.NewAuthorizationClient(conn)

	if h, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health: %v %v", h, err)
	}

	// No session, a browser: 302 to the sign-in page with the way back.
	res := check(t, c, map[string]string{"accept": browserAccept})
	d := res.GetDeniedResponse()
	loc, _ := url.Parse(headerValues(d.GetHeaders())["location"])
	if codes.Code(res.GetStatus().GetCode()) != codes.Unauthenticated || d.GetStatus().GetCode() != typev3.StatusCode_Found ||
		loc == nil || loc.Host != "login.authstack.test" || loc.Query().Get("rd") != "https://shop.apps.authstack.test/cart?item=7" {
		t.Fatalf("browser without a session: %v", res)
	}
	// No session, an API call: 401 with the JSON error.
	res = check(t, c, map[string]string{"accept": "application/json", "authorization": "Bearer not-ours"})
	d = res.GetDeniedResponse()
	if codes.Code(res.GetStatus().GetCode()) != codes.Unauthenticated || d.GetStatus().GetCode() != typev3.StatusCode_Unauthorized ||
		d.GetBody() != `{"error":{"code":"unauthorized","message":"a valid session is required"}}`+"\n" ||
		headerValues(d.GetHeaders())["content-type"] != "application/json" {
		t.Fatalf("API call without a session: %v", res)
	}

	tok := e.SignupVerifyLogin(t, "grpc@example.com", "grpc check password")
	sess := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...)
	uid := sess.JSON["user"].(map[string]any)["id"].(string)
	sid := sess.JSON["session"].(map[string]any)["id"].(string)
	for name, cred := range map[string]map[string]string{
		"bearer": {"authorization": "Bearer " + tok},
		"cookie": {"cookie": "a=b; session=" + tok},
	} {
		// The client's own X-Auth-* headers: the ones the check sets are
		// overwritten, any other removed.
		cred["x-auth-user-id"] = "forged-admin"
		cred["x-auth-role"] = "admin"
		cred["x_auth_user_id"] = "forged-admin" // servers that read _ as - (CGI, Rack) see this one too
		res := check(t, c, cred)
		ok := res.GetOkResponse()
		got := headerValues(ok.GetHeaders())
		if codes.Code(res.GetStatus().GetCode()) != codes.OK || len(got) != 5 || got["x-auth-user-id"] != uid ||
			got["x-auth-email"] != "grpc@example.com" || got["x-auth-session-id"] != sid || got["x-auth-level"] != "password" || got["x-auth-time"] == "" {
			t.Fatalf("%s: %v", name, res)
		}
		if rm := ok.GetHeadersToRemove(); !slices.Equal(slices.Sorted(slices.Values(rm)), []string{"x-auth-role", "x_auth_user_id"}) {
			t.Fatalf("%s: headers to remove %v", name, ok.GetHeadersToRemove())
		}
	}
	// A route that requires a second factor (Envoy's per-route context
	// extension): a password session is refused with 403 and its level.
	res, err = c.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		ContextExtensions: map[string]string{"level": "mfa"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Headers: map[string]string{"authorization": "Bearer " + tok}}},
	}})
	if err != nil || codes.Code(res.GetStatus().GetCode()) != codes.PermissionDenied || res.GetDeniedResponse().GetStatus().GetCode() != typev3.StatusCode_Forbidden ||
		headerValues(res.GetDeniedResponse().GetHeaders())["x-auth-level"] != "password" {
		t.Fatalf("level mfa with a password session: %v %v", res, err)
	}
	// Every level asked for counts: the route's extension and the header
	// (here the route asks only for a session, the header for a second
	// factor), so neither can lower the other.
	res, err = c.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		ContextExtensions: map[string]string{"level": "password"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Headers: map[string]string{"authorization": "Bearer " + tok, "x-auth-require-level": "mfa"}}},
	}})
	if err != nil || codes.Code(res.GetStatus().GetCode()) != codes.PermissionDenied {
		t.Fatalf("route level password, header level mfa, a password session: %v %v", res, err)
	}
	// Envoy's encode_raw_headers form (header_map) is read too.
	res, err = c.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{HeaderMap: &corev3.HeaderMap{
			Headers: []*corev3.HeaderValue{{Key: "authorization", RawValue: []byte("Bearer " + tok)}},
		}}},
	}})
	if err != nil || codes.Code(res.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("header_map: %v %v", res, err)
	}

	if r := e.Do(t, "POST", "/auth/logout", nil, authtest.Bearer(tok)...); r.Status != 204 {
		t.Fatalf("logout: %d", r.Status)
	}
	res = check(t, c, map[string]string{"authorization": "Bearer " + tok})
	if res.GetDeniedResponse().GetStatus().GetCode() != typev3.StatusCode_Unauthorized {
		t.Fatalf("after logout: %v", res)
	}
}
