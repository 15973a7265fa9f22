package mail_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/dbtest"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/mail"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

func TestRenderTemplates(t *testing.T) {
	base, _ := url.Parse("https://app.example.com/base")
	links := mail.Links{Base: base}
	tok := "abc-DEF_123"
	r, err := mail.Render(mail.KindVerify, mail.Data{Link: links.Verify(tok), ValidFor: mail.HumanDuration(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := "https://app.example.com/base/verify-email?token=abc-DEF_123"
	if !strings.Contains(r.Text, want) || !strings.Contains(r.HTML, `href="`+want+`"`) || !strings.Contains(r.Text, "24 hours") || r.Subject == "" {
		t.Fatalf("verify email: %+v", r)
	}
	r, err = mail.Render(mail.KindReset, mail.Data{Link: links.Reset(tok), ValidFor: mail.HumanDuration(time.Hour)})
	if err != nil || !strings.Contains(r.Text, "https://app.example.com/base/reset-password?token=abc-DEF_123") || !strings.Contains(r.Text, "1 hour") {
		t.Fatalf("reset email: %+v %v", r, err)
	}
	r, err = mail.Render(mail.KindAccountExists, mail.Data{LoginLink: links.Login(), ResetLink: links.ForgotPassword()})
	if err != nil || !strings.Contains(r.Text, "https://app.example.com/base/login") || strings.Contains(r.Text, "token=") {
		t.Fatalf("account exists email: %+v %v", r, err)
	}
	// HTML escaping of a hostile link.
	r, _ = mail.Render(mail.KindVerify, mail.Data{Link: `https://x/"><script>`, ValidFor: "1 hour"})
	if strings.Contains(r.HTML, "<script>") {
		t.Fatal("HTML template does not escape")
	}
	if _, err := mail.Render("nope", mail.Data{}); err == nil {
		t.Fatal("unknown kind rendered")
	}
}

func TestBackoff(t *testing.T) {
	base, max := time.Second, 30*time.Second
	prev := time.Duration(0)
	for attempt := 1; attempt <= 10; attempt++ {
		d := mail.Backoff(attempt, base, max)
		nominal := base << (attempt - 1)
		if nominal > max {
			nominal = max
		}
		if d > nominal || d < nominal*4/5 {
			t.Fatalf("attempt %d: %s not within 80-100%% of %s", attempt, d, nominal)
		}
		if nominal < max && d < prev/2 {
			t.Fatalf("backoff shrinks: %s after %s", d, prev)
		}
		prev = d
	}
}

func sender(t *testing.T, m *testservers.MailServer) *mail.SMTPSender {
	s, err := mail.NewSMTPSender(config.SMTP{Host: m.SMTPHost(), Port: m.SMTPPort(), TLS: "auto", From: "App <noreply@app.test>"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTPSend(t *testing.T) {
	t.Parallel()
	m := testservers.Mailpit(t)
	s := sender(t, m)
	err := s.Send(context.Background(), mail.Message{ID: 7, To: "bob@example.com", Subject: "Héllo ✓", Text: "plain body line\nwith a = sign", HTML: "<p>html body</p>"})
	if err != nil {
		t.Fatal(err)
	}
	msg := m.WaitForMessage(t, "bob@example.com", 10*time.Second)
	if msg.Subject != "Héllo ✓" || !strings.Contains(msg.Text, "with a = sign") || !strings.Contains(msg.HTML, "<p>html body</p>") || !strings.Contains(msg.From, "noreply@app.test") {
		t.Fatalf("received %+v", msg)
	}
	// STARTTLS required but not offered: refused, nothing sent in clear.
	strict, _ := mail.NewSMTPSender(config.SMTP{Host: m.SMTPHost(), Port: m.SMTPPort(), TLS: "starttls", From: "noreply@app.test"})
	if err := strict.Send(context.Background(), mail.Message{To: "carol@example.com", Subject: "s", Text: "t", HTML: "h"}); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("want a STARTTLS error, got %v", err)
	}
	// Credentials are never sent over an unencrypted connection to a non-local host name.
	if err := s.Send(context.Background(), mail.Message{To: "bad address", Subject: "s"}); err == nil {
		t.Fatal("invalid recipient accepted")
	}
}

// Several workers (replicas) drain one outbox: every message arrives once.
func TestWorkersDeliverEachMessageOnce(t *testing.T) {
	t.Parallel()
	st := dbtest.Store(t)
	ctx := context.Background()
	m := testservers.Mailpit(t)
	const n = 24
	for i := 0; i < n; i++ {
		if _, err := store.InsertOutbox(ctx, st.Pool, store.OutboxMessage{Kind: "verify", To: fmt.Sprintf("u%d@example.com", i), Subject: "s", Text: "t", HTML: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		worker := mail.NewWorker(st.Pool, sender(t, m), mail.WorkerOptions{Poll: 50 * time.Millisecond})
		go func() { defer wg.Done(); worker.Run(wctx) }()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var pending int64
		_ = st.Pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE sent_at IS NULL").Scan(&pending)
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still pending", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	got := map[string]int{}
	for _, msg := range m.Messages(t) {
		for _, to := range msg.To {
			got[to]++
		}
	}
	if len(got) != n {
		t.Fatalf("%d distinct recipients, want %d", len(got), n)
	}
	for to, c := range got {
		if c != 1 {
			t.Fatalf("%s got %d copies", to, c)
		}
	}
}

// slowRelay is a real TCP relay in front of an SMTP server that holds each
// connection for delay before passing it on: a slow mail relay.
func slowRelay(t *testing.T, upstream string, delay time.Duration) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(delay) // the relay's slowness, not test ordering
				u, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// Two workers and a slow relay (each message takes 1.2 s, within half the
// 3 s lease, but a batch of five would outlive it): every message is sent
// exactly once (a lease per message).
func TestSlowRelayNeverSendsTwice(t *testing.T) {
	t.Parallel()
	st := dbtest.Store(t)
	ctx := context.Background()
	m := testservers.Mailpit(t)
	port := slowRelay(t, fmt.Sprintf("%s:%d", m.SMTPHost(), m.SMTPPort()), 1200*time.Millisecond)
	const n = 5
	for i := 0; i < n; i++ {
		if _, err := store.InsertOutbox(ctx, st.Pool, store.OutboxMessage{Kind: "verify", To: fmt.Sprintf("slow%d@example.com", i), Subject: "s", Text: "t", HTML: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		s, err := mail.NewSMTPSender(config.SMTP{Host: "127.0.0.1", Port: port, TLS: "none", From: "App <noreply@app.test>"})
		if err != nil {
			t.Fatal(err)
		}
		worker := mail.NewWorker(st.Pool, s, mail.WorkerOptions{Poll: 50 * time.Millisecond, Lease: 3 * time.Second})
		wg.Add(1)
		go func() { defer wg.Done(); worker.Run(wctx) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending int64
		_ = st.Pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE sent_at IS NULL").Scan(&pending)
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still pending", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait() // a worker in the middle of a send finishes it first
	got := map[string]int{}
	for _, msg := range m.Messages(t) {
		for _, to := range msg.To {
			got[to]++
		}
	}
	for i := 0; i < n; i++ {
		if to := fmt.Sprintf("slow%d@example.com", i); got[to] != 1 {
			t.Errorf("%s got %d copies, want 1 (all: %v)", to, got[to], got)
		}
	}
}

// A permanent rejection (550 from a real SMTP server) is recorded as failed
// at once, not retried, counted as REJECTED, and logged without the
// recipient's address; a message whose link expired is not sent at all.
func TestRejectedAndExpiredMessagesAreNotRetried(t *testing.T) {
	t.Parallel()
	st := dbtest.Store(t)
	ctx := context.Background()
	m := testservers.Mailpit(t, "--smtp-allowed-recipients", "^allowed@example\\.com$")
	rejected, err := store.InsertOutbox(ctx, st.Pool, store.OutboxMessage{Kind: "reset", To: "victim.name@example.com", Subject: "s", Text: "t", HTML: "h", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := store.InsertOutbox(ctx, st.Pool, store.OutboxMessage{Kind: "reset", To: "allowed@example.com", Subject: "s", Text: "t", HTML: "h", Expires: time.Now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	ev := &events{m: map[string]int{}}
	w := mail.NewWorker(st.Pool, sender(t, m), mail.WorkerOptions{RetryBase: time.Millisecond, RetryMax: time.Millisecond, Events: ev,
		Logger: slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))})
	for i := 0; i < 4; i++ { // more rounds than messages: a retried message would be claimed again
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // past the 1 ms retry delay
	}
	for id, wantErr := range map[int64]string{rejected: "550", expired: "expired"} {
		var attempts int
		var failed bool
		var lastErr string
		if err := st.Pool.QueryRow(ctx, "SELECT attempts, failed_at IS NOT NULL, last_error FROM outbox WHERE id = $1", id).Scan(&attempts, &failed, &lastErr); err != nil {
			t.Fatal(err)
		}
		if attempts != 1 || !failed || !strings.Contains(lastErr, wantErr) || strings.Contains(lastErr, "victim.name") {
			t.Errorf("message %d: attempts %d, failed %v, last_error %q", id, attempts, failed, lastErr)
		}
	}
	if len(m.Messages(t)) != 0 {
		t.Error("an expired or rejected message was delivered")
	}
	if ev.get("REJECTED") != 1 || ev.get("EXPIRED") != 1 || ev.get("SEND_RETRY") != 0 {
		t.Errorf("email events %v", ev.m)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "victim.name") || !strings.Contains(logs.String(), "rejected") {
		t.Errorf("logs name the recipient or miss the rejection:\n%s", logs.String())
	}
}

type events struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *events) EmailEvent(kind string) { e.mu.Lock(); e.m[kind]++; e.mu.Unlock() }
func (e *events) get(kind string) int    { e.mu.Lock(); defer e.mu.Unlock(); return e.m[kind] }

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
