package httpapi_test

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/httpapi"
	"github.com/leanauth/authstack/authserver/internal/authtest"
)

// Malformed requests get a 4xx JSON error, never a 500.
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{NoPooler: true, Vars: map[string]string{"AUTH_MAX_BODY_BYTES": "1024"}})
	big := `{"email":"a@b.co","password":"` + strings.Repeat("x", 2000) + `"}`
	cases := []struct {
		method, path, body, ct string
		status                 int
		code                   string
	}{
		{"POST", "/auth/signup", `{"email":"a@b.co"`, "application/json", 400, "invalid_request"},
		{"POST", "/auth/signup", `not json`, "application/json", 400, "invalid_request"},
		{"POST", "/auth/signup", `{"email":"a@b.co","password":"long enough pw","role":"admin"}`, "application/json", 400, "invalid_request"},
		{"POST", "/auth/signup", `{"email":"not-an-email","password":"long enough pw"}`, "application/json", 400, "invalid_email"},
		{"POST", "/auth/signup", `{"email":"a@b.co","password":"short"}`, "application/json", 400, "invalid_password"},
		{"POST", "/auth/signup", `{"email":"a@b.co","password":"password123"}`, "application/json", 400, "invalid_password"},
		{"POST", "/auth/signup", `{"email":"a@b.co","password":"` + strings.Repeat("y", 129) + `"}`, "application/json", 400, "invalid_password"},
		{"POST", "/auth/signup", big, "application/json", 413, "body_too_large"},
		{"POST", "/auth/signup", `email=a`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"POST", "/auth/login", `{"email":["a"],"password":"x"}`, "application/json", 400, "invalid_request"},
		{"POST", "/auth/login", `{"email":"a@b.co","password":""}`, "application/json", 400, "invalid_request"},
		{"POST", "/auth/login", `{"email":"Bad Guy <a@b.co>","password":"xxxxxxxxx"}`, "application/json", 400, "invalid_email"},
		{"POST", "/auth/verify-email", `{"token":"short"}`, "application/json", 400, "invalid_token"},
		{"POST", "/auth/verify-email", `{"token":"` + strings.Repeat("A", 43) + `"}`, "application/json", 400, "invalid_token"},
		{"POST", "/auth/password/reset", `{"token":"../../etc","password":"long enough pw"}`, "application/json", 400, "invalid_token"},
		{"POST", "/auth/password/forgot", `{"email":"a@b.co\r\nBcc: x@y.z"}`, "application/json", 400, "invalid_email"},
		{"POST", "/auth/password/forgot", `{"email":"a@b.co\nBcc: x@y.z"}`, "application/json", 400, "invalid_email"},
		{"POST", "/auth/resend-verification", `[]`, "application/json", 400, "invalid_request"},
		{"GET", "/auth/login", ``, "", 405, "method_not_allowed"},
		{"PUT", "/auth/sessions/123", ``, "", 405, "method_not_allowed"},
		{"GET", "/nope", ``, "", 404, "not_found"},
		{"GET", "/auth/session", ``, "", 401, "unauthorized"},
		{"GET", "/auth/session", ``, "bearer-garbage", 401, "unauthorized"},
		{"POST", "/auth/password/change", `{}`, "application/json", 401, "unauthorized"},
	}
	for _, c := range cases {
		var hdr []string
		if c.ct == "bearer-garbage" {
			hdr = []string{"Authorization", "Bearer !!!"}
		} else if c.ct != "" {
			hdr = []string{"Content-Type", c.ct}
		}
		var body any
		if c.body != "" {
			body = c.body
		}
		r := e.Do(t, c.method, c.path, body, hdr...)
		if r.Status != c.status || r.ErrorCode() != c.code || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s %.60q: got %d %s, want %d %s", c.method, c.path, c.body, r.Status, r.Body, c.status, c.code)
		}
	}
	if strings.Contains(e.MetricsText(t), `status_code="500"`) {
		t.Error("a malformed request caused a 500")
	}
}

// The served routes are exactly the OpenAPI document's operations, and every
// documented operation answers (not the 404/405 fallbacks).
func TestRoutesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(httpapi.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	u, _ := url.Parse("https://app.example.com")
	srv := httpapi.New(httpapi.Options{Config: &config.Config{FrontendURL: u, CookieName: "session", MaxBodyBytes: 1024}})
	var served []string
	for _, r := range srv.Routes() {
		served = append(served, r.Method+" "+strings.ReplaceAll(r.Pattern, "...}", "}"))
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("routes differ from openapi.yaml\nserved:\n%s\ndocumented:\n%s", strings.Join(served, "\n"), strings.Join(documented, "\n"))
	}

	e := authtest.Start(t, authtest.Options{NoPooler: true})
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{id}", "00000000-0000-0000-0000-000000000000")
		path = strings.ReplaceAll(path, "{path}", "some/app/path")
		r := e.Do(t, method, path, nil)
		if code := r.ErrorCode(); code == "not_found" && !strings.Contains(path, "/sessions/") || code == "method_not_allowed" {
			t.Errorf("%s answered %d %s", op, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "GET", "/openapi.yaml", nil); r.Status != 200 || !strings.Contains(string(r.Body), "openapi: 3") {
		t.Errorf("GET /openapi.yaml: %d", r.Status)
	}
}

// /ready names the schema when migrations have not run.
func TestReadyReportsMissingSchema(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{NoPooler: true})
	if _, err := e.Store.Pool.Exec(context.Background(), "DELETE FROM schema_migrations"); err != nil {
		t.Fatal(err)
	}
	r := e.Do(t, "GET", "/ready", nil)
	checks, _ := r.JSON["checks"].(map[string]any)
	if r.Status != 503 || checks["schema"] == "ok" || checks["postgres"] != "ok" || checks["redis"] != "ok" ||
		!strings.Contains(checks["schema"].(string), "migrate") {
		t.Fatalf("ready without schema: %d %s", r.Status, r.Body)
	}
}
