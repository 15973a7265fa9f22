package observe_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/observe"
	"github.com/leanauth/authstack/internal/testservers"
)

// A 5xx of the real server arrives, with release and environment, and
// nothing of the request; the wrong password before it sends nothing.
func TestSentryReportsUnexpectedErrorsOnly(t *testing.T) {
	t.Parallel()
	rec := testservers.Sentry(t)
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"SENTRY_DSN": rec.DSN(), "SENTRY_ENVIRONMENT": "staging-test",
	}})
	email, pw := "sentry.user@example.com", "sentry test passphrase"
	tok := e.SignupVerifyLogin(t, email, pw)
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": "wrong passphrase"}); r.Status != 401 {
		t.Fatalf("wrong password: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer("no-such-token")...); r.Status != 401 {
		t.Fatalf("bad token: %d %s", r.Status, r.Body)
	}
	// Force an internal error: the users table is gone.
	if _, err := e.Store.Pool.Exec(context.Background(), "ALTER TABLE users RENAME TO users_gone"); err != nil {
		t.Fatal(err)
	}
	r := e.Do(t, "POST", "/auth/login?email="+email, map[string]string{"email": email, "password": pw},
		"Cookie", "session="+tok, "Authorization", "Bearer "+tok)
	if r.Status != 500 {
		t.Fatalf("login without a users table: %d %s", r.Status, r.Body)
	}
	// The transport sends in order: the first event is the 500's, so the
	// wrong password and the bad token sent nothing.
	ev := rec.Next(t, 0)
	if ev["message"] != "request failed" || ev["release"] == "" || ev["release"] == nil || ev["environment"] != "staging-test" || ev["level"] != "error" {
		t.Fatalf("event: %v", ev)
	}
	if !strings.Contains(rec.All(), "users") {
		t.Fatalf("the event lacks the error:\n%s", rec.All())
	}
	if _, ok := ev["request"]; ok {
		t.Fatalf("the event carries the request: %v", ev["request"])
	}
	e.Stop(t) // flushes
	for _, secret := range []string{tok, pw, email, "sentry.user", "wrong passphrase"} {
		if strings.Contains(rec.All(), secret) {
			t.Fatalf("an envelope contains %q:\n%s", secret, rec.All())
		}
	}
}

// A recovered panic logged at error level arrives with the stack of the
// panic, and emails in the message and attributes are masked.
func TestSentryPanicStackAndScrubbing(t *testing.T) {
	t.Parallel()
	rec := testservers.Sentry(t)
	hub, err := observe.Sentry(config.Observability{SentryDSN: rec.DSN(), SentryEnvironment: "test"}, "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(observe.Reporting(slog.NewJSONHandler(io.Discard, nil), hub)).With("component", "test")
	log.Warn("not reported")
	func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error("handler panic for bob@example.org", "panic", p, "error", errors.New("user carol@example.net"))
			}
		}()
		panickingFunction()
	}()
	hub.Flush(10 * time.Second)
	ev := rec.Next(t, 0)
	raw := rec.All()
	for _, leak := range []string{"bob@example.org", "carol@example.net", "dave@example.com", "not reported"} {
		if strings.Contains(raw, leak) {
			t.Fatalf("the envelope contains %q:\n%s", leak, raw)
		}
	}
	if ev["release"] != "v9.9.9" || ev["message"] != "handler panic for <email>" || !strings.Contains(raw, "panickingFunction") ||
		!strings.Contains(raw, `"component":"test"`) {
		t.Fatalf("event:\n%s", raw)
	}
	if strings.Contains(raw, "context_line") {
		t.Fatalf("source lines sent:\n%s", raw)
	}
	if n := rec.Events(); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

func panickingFunction() { panic("boom for dave@example.com") }

// Scrub drops the request and user and masks emails everywhere.
func TestScrub(t *testing.T) {
	e := &sentry.Event{Message: "failed for x@y.io", Request: &sentry.Request{Cookies: "session=abc", QueryString: "token=abc"},
		User: sentry.User{Email: "x@y.io"}, Breadcrumbs: []*sentry.Breadcrumb{{Message: "x@y.io"}},
		Exception: []sentry.Exception{{Type: "x@y.io", Value: "<x@y.io>"}}, Contexts: map[string]sentry.Context{"log": {"error": "to x@y.io"}}}
	out := observe.Scrub(e, nil)
	b, _ := json.Marshal(out)
	if strings.Contains(string(b), "x@y.io") || strings.Contains(string(b), "abc") || out.Request != nil {
		t.Fatalf("scrubbed event: %s", b)
	}
}
