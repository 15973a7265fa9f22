package service_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/dbtest"

	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

type counter struct{ n map[string]int }

func (c *counter) EmailEvent(k string) { c.n[k]++ }
func (c *counter) Notify()             { c.n["notify"]++ }

type fixture struct {
	svc    *service.Service
	st     *store.Store
	hasher *password.Hasher
	events *counter
}

func setup(t *testing.T, slots int, wait time.Duration, opts ...func(*config.Config)) *fixture {
	t.Helper()
	st := dbtest.Store(t)
	r := testservers.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password()})
	t.Cleanup(func() { rdb.Close() })
	key := make([]byte, 32)
	h, err := password.New(config.Argon2{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}, []config.Pepper{{ID: config.PepperID(key), Key: key}}, slots, -1, wait)
	if err != nil {
		t.Fatal(err)
	}
	fu, _ := url2("https://app.example.com")
	cfg := &config.Config{FrontendURL: fu, VerifyTokenTTL: time.Hour, ResetTokenTTL: time.Hour,
		RateLimits: config.RateLimits{LockoutAfter: 0}, Peppers: []config.Pepper{{ID: config.PepperID(key), Key: key}},
		MFA: config.MFA{Methods: []string{"totp"}, Issuer: "test"}}
	for _, o := range opts {
		o(cfg)
	}
	ev := &counter{n: map[string]int{}}
	svc := service.New(service.Deps{
		Store: st, Hasher: h, Sessions: session.NewManager(st.Pool, rdb, session.Options{TTL: time.Hour}),
		Limiter: ratelimit.New(rdb, cfg.RateLimits), Audit: audit.NewRecorder(nil), Mailer: ev, Emails: ev, Config: cfg,
	})
	return &fixture{svc: svc, st: st, hasher: h, events: ev}
}

func url2(s string) (*url.URL, error) { return url.Parse(s) }

func outbox(t *testing.T, st *store.Store) []store.OutboxMessage {
	t.Helper()
	rows, err := st.Pool.Query(context.Background(), "SELECT id, kind, to_addr, subject, text_body, html_body FROM outbox ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []store.OutboxMessage
	for rows.Next() {
		var m store.OutboxMessage
		if err := rows.Scan(&m.ID, &m.Kind, &m.To, &m.Subject, &m.Text, &m.HTML); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

var cl = service.Client{IP: "192.0.2.1", UserAgent: "test"}

// Signup twice before verifying: a second verification email; the newest
// email activates the password of the signup it was sent for (a first
// signer cannot plant a password); after verifying: an "account exists"
// email.
func TestSignupEmailsByAccountState(t *testing.T) {
	t.Parallel()
	f := setup(t, 2, time.Second)
	ctx := context.Background()
	if err := f.svc.Signup(ctx, cl, " Dana@Example.COM ", "first password"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Signup(ctx, cl, "dana@example.com", "second password"); err != nil {
		t.Fatal(err)
	}
	msgs := outbox(t, f.st)
	if len(msgs) != 2 || msgs[0].Kind != "verify" || msgs[1].Kind != "verify" || msgs[0].To != "dana@example.com" {
		t.Fatalf("outbox: %+v", msgs)
	}
	tok := tokenOf(t, msgs[1].Text)
	if err := f.svc.VerifyEmail(ctx, cl, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(ctx, cl, "dana@example.com", "first password"); !errors.Is(err, service.ErrInvalidCredentials) {
		t.Fatalf("the first signer's password survived the owner's verification: %v", err)
	}
	if _, err := f.svc.Login(ctx, cl, "dana@example.com", "second password"); err != nil {
		t.Fatal(err)
	}
	// The first email's link died with the verification.
	if err := f.svc.VerifyEmail(ctx, cl, tokenOf(t, msgs[0].Text)); !errors.Is(err, service.ErrInvalidToken) {
		t.Fatalf("the other verification link after verifying: %v", err)
	}
	if err := f.svc.Signup(ctx, cl, "dana@example.com", "third password"); err != nil {
		t.Fatal(err)
	}
	msgs = outbox(t, f.st)
	if len(msgs) != 3 || msgs[2].Kind != "account_exists" || strings.Contains(msgs[2].Text, "token=") {
		t.Fatalf("outbox: %+v", msgs[2])
	}
	if f.events.n["QUEUED"] != 3 || f.events.n["notify"] != 3 {
		t.Fatalf("events %v", f.events.n)
	}
	// Resend for a verified account and an unknown one queues nothing.
	_ = f.svc.ResendVerification(ctx, cl, "dana@example.com")
	_ = f.svc.ResendVerification(ctx, cl, "nobody@example.com")
	if len(outbox(t, f.st)) != 3 {
		t.Fatal("resend queued an email for a verified or unknown address")
	}
}

func tokenOf(t *testing.T, text string) string {
	t.Helper()
	i := strings.Index(text, "token=")
	if i < 0 {
		t.Fatalf("no token in %q", text)
	}
	return text[i+6 : i+6+43]
}

// Hashing at capacity gives ErrBusy (503 + Retry-After), never a hang.
func TestBusyHasherGives503(t *testing.T) {
	t.Parallel()
	f := setup(t, 1, 30*time.Millisecond)
	ctx := context.Background()
	// Hold the only slot with one slow verification: a stored hash costing 90 iterations over 16 MiB (about a second; the hasher refuses more than 100)
	// (Verify takes its parameters from the stored string) keeps it for far longer
	// than the 30 ms a request waits. No timing race: we wait until it is held.
	key := make([]byte, 32)
	slowHasher, err := password.New(config.Argon2{MemoryKiB: 16384, Iterations: 90, Parallelism: 1},
		[]config.Pepper{{ID: config.PepperID(key), Key: key}}, 1, -1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := slowHasher.Hash(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = f.hasher.Verify(ctx, "slow", slow)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for f.hasher.InFlight() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow verification never took the hashing slot")
		}
		time.Sleep(time.Millisecond)
	}
	err = f.svc.Signup(ctx, cl, "busy@example.com", "some password 1")
	var se *service.Error
	if !errors.As(err, &se) || se != service.ErrBusy || se.Status != 503 {
		t.Fatalf("signup with the only hashing slot taken: %v, want ErrBusy (503)", err)
	}
	if ra := f.svc.BusyRetryAfter(); ra < time.Second {
		t.Fatalf("Retry-After of a busy answer %v, want at least a second", ra)
	}
	<-done
	if err := f.svc.Signup(ctx, cl, "busy@example.com", "some password 1"); err != nil {
		t.Fatalf("signup once the slot is free: %v", err)
	}
}

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{" A@B.Co ": "a@b.co", "first.last+tag@sub.example.org": "first.last+tag@sub.example.org"}
	for in, want := range good {
		if got, ok := service.NormalizeEmail(in); !ok || got != want {
			t.Errorf("NormalizeEmail(%q) = %q %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "a", "a@b", "@b.co", "a@.co", "a@b..co", "a@b.co.", "Name <a@b.co>", "a@b.co\r\nBcc: c@d.ef", "a b@c.de", strings.Repeat("x", 65) + "@b.co", "a@" + strings.Repeat("b", 250) + ".co"} {
		if got, ok := service.NormalizeEmail(in); ok {
			t.Errorf("NormalizeEmail(%q) accepted as %q", in, got)
		}
	}
}
