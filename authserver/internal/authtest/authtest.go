// Package authtest runs a real authserver for tests: a fresh PostgreSQL
// database (reached through pgbouncer in transaction mode), a fresh Redis,
// a mailpit SMTP server, and app.Serve on loopback ports, configured only
// through environment variables as in production. Import it from tests only.
package authtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// Env is one running authserver and its servers.
type Env struct {
	T         testing.TB
	DirectURL string // the database, direct
	PoolURL   string // the same database through pgbouncer (DATABASE_URL)
	Redis     *testservers.RedisServer
	Mail      *testservers.MailServer
	Store     *store.Store // direct pool for assertions
	Vars      map[string]string
	BaseURL   string
	Metrics   string
	Client    *http.Client

	cancel   context.CancelFunc
	done     chan error
	logs     *syncBuffer
	ownPorts bool // PORT and METRICS_ADDR are the harness's choice (pickPorts), not the caller's
}

// Pepper returns a random 64-hex-character pepper.
func Pepper() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Options adjust an Env.
type Options struct {
	Vars       map[string]string // extra or overriding environment
	NoPooler   bool              // DATABASE_URL direct instead of through pgbouncer
	SharedMail *testservers.MailServer
	// DirectURL is an existing database to serve (a restored one); empty: a new one.
	DirectURL string
	// Redis is an existing Redis to use; nil: a new one.
	Redis *testservers.RedisServer
}

// Start starts the servers and the authserver; everything stops at cleanup.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	direct := o.DirectURL
	if direct == "" {
		direct = testservers.Postgres(t).NewDatabase(t)
	}
	e := &Env{T: t, DirectURL: direct, PoolURL: direct}
	if !o.NoPooler {
		e.PoolURL = testservers.PgBouncer(t, direct).URL()
	}
	e.Redis = o.Redis
	if e.Redis == nil {
		e.Redis = testservers.Redis(t)
	}
	if o.SharedMail != nil {
		e.Mail = o.SharedMail
	} else {
		e.Mail = testservers.Mailpit(t)
	}
	ctx := context.Background()
	if _, err := store.Migrate(ctx, direct); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	st, err := store.Open(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e.Store = st

	e.Vars = map[string]string{
		"DATABASE_URL":            e.PoolURL,
		"DATABASE_DIRECT_URL":     direct,
		"REDIS_URL":               e.Redis.URL(),
		"AUTH_PEPPER":             Pepper(),
		"SMTP_HOST":               e.Mail.SMTPHost(),
		"SMTP_PORT":               strconv.Itoa(e.Mail.SMTPPort()),
		"MAIL_FROM":               "AuthStack <noreply@authstack.test>",
		"FRONTEND_URL":            "https://app.authstack.test",
		"LOG_LEVEL":               "debug",
		"HOST":                    "127.0.0.1",
		"AUTH_ARGON2_MEMORY_KIB":  "8192",
		"AUTH_ARGON2_ITERATIONS":  "1",
		"AUTH_ARGON2_PARALLELISM": "1",
		"AUTH_COOKIE_SECURE":      "false",
		"AUTH_MAIL_POLL_INTERVAL": "100ms",
		"AUTH_MAIL_RETRY_BASE":    "200ms",
		"AUTH_MAIL_RETRY_MAX":     "1s",
		"AUTH_SHUTDOWN_TIMEOUT":   "5s",
	}
	e.pickPorts(t)
	e.ownPorts = o.Vars["PORT"] == "" && o.Vars["METRICS_ADDR"] == ""
	for k, v := range o.Vars {
		if v == "" {
			delete(e.Vars, k)
		} else {
			e.Vars[k] = v
		}
	}
	e.Client = &http.Client{Timeout: 30 * time.Second}
	e.start(t)
	return e
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e *Env) start(t testing.TB) {
	t.Helper()
	e.startAttempt(t, 1)
}

func (e *Env) startAttempt(t testing.TB, attempt int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	e.logs = &syncBuffer{}
	started := make(chan [2]string, 1)
	vars := e.Vars
	get := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	go func() {
		e.done <- app.Serve(ctx, get, e.logs, &app.Hooks{Started: func(a, m string) { started <- [2]string{a, m} }})
	}()
	select {
	case addrs := <-started:
		e.BaseURL = "http://" + addrs[0]
		e.Metrics = "http://" + addrs[1] + "/metrics"
	case err := <-e.done:
		// A port found free may be taken by another test before Serve binds it:
		// pick others and try again, as internal/servers does for its servers.
		if attempt < 3 && e.ownPorts && err != nil && strings.Contains(err.Error(), "address already in use") {
			cancel()
			e.pickPorts(t)
			e.startAttempt(t, attempt+1)
			return
		}
		t.Fatalf("authserver did not start: %v\nlogs:\n%s", err, e.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("authserver did not start within 30s\nlogs:\n%s", e.logs.String())
	}
	t.Cleanup(func() { e.Stop(t) })
}

// freePort finds the ports of the API and the metrics (a variable for the harness's own test).
var freePort = testservers.FreePort

// pickPorts sets PORT and METRICS_ADDR to ports that are free now.
func (e *Env) pickPorts(t testing.TB) {
	e.Vars["PORT"] = strconv.Itoa(freePort(t))
	e.Vars["METRICS_ADDR"] = "127.0.0.1:" + strconv.Itoa(freePort(t))
}

// Stop shuts the authserver down (idempotent) and returns Serve's error.
func (e *Env) Stop(t testing.TB) error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if t.Failed() {
			t.Logf("authserver logs:\n%s", e.Logs())
		}
		return err
	case <-time.After(20 * time.Second):
		// Where it hangs (the server runs in this process): every goroutine's stack.
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("authserver did not stop within 20s\nlogs:\n%s\ngoroutines:\n%s", e.Logs(), buf)
		return nil
	}
}

// Restart stops the authserver and starts it again with e.Vars.
func (e *Env) Restart(t testing.TB) {
	t.Helper()
	if err := e.Stop(t); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if e.ownPorts {
		e.pickPorts(t)
	}
	e.start(t)
}

// Replica starts a second authserver over the same database, Redis and
// SMTP server (another pod of the same deployment); it stops at cleanup.
func (e *Env) Replica(t testing.TB) *Env {
	t.Helper()
	r := &Env{T: t, DirectURL: e.DirectURL, PoolURL: e.PoolURL, Redis: e.Redis, Mail: e.Mail, Store: e.Store, Client: e.Client,
		Vars: map[string]string{}}
	for k, v := range e.Vars {
		r.Vars[k] = v
	}
	r.ownPorts = true
	r.pickPorts(t)
	r.start(t)
	return r
}

// Logs returns everything the server logged.
func (e *Env) Logs() string { return e.logs.String() }

// Response is a decoded HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// ErrorCode is error.code of a JSON error body.
func (r *Response) ErrorCode() string {
	if m, ok := r.JSON["error"].(map[string]any); ok {
		s, _ := m["code"].(string)
		return s
	}
	return ""
}

// Do sends a request. body may be nil, a string (sent raw) or a value
// (sent as JSON). headers alternate name, value.
func (e *Env) Do(t testing.TB, method, path string, body any, headers ...string) *Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.BaseURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.JSON); err != nil {
			t.Fatalf("%s %s: response is not a JSON object: %v: %s", method, path, err, b)
		}
	}
	return r
}

// Bearer is the header pair for a token.
func Bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

var linkRE = regexp.MustCompile(`https?://\S+[?&]token=([A-Za-z0-9_\-]+)`)

// TokenFromMail extracts the token of the first link with ?token= in text.
func TokenFromMail(t testing.TB, text string) string {
	t.Helper()
	m := linkRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no token link in email:\n%s", text)
	}
	u, err := url.QueryUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// SignupVerifyLogin creates a verified account and returns a session token.
func (e *Env) SignupVerifyLogin(t testing.TB, email, pw string) string {
	t.Helper()
	if r := e.Do(t, "POST", "/auth/signup", map[string]string{"email": email, "password": pw}); r.Status != 202 {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	msg := e.Mail.WaitForMessage(t, email, 15*time.Second)
	tok := TokenFromMail(t, msg.Text)
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": tok}); r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw})
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	return r.JSON["token"].(string)
}

// MetricsText returns the /metrics page.
func (e *Env) MetricsText(t testing.TB) string {
	t.Helper()
	resp, err := e.Client.Get(e.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
