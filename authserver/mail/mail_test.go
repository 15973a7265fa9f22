package mail_test

import (
	"context"
	"fmt"
	"github.com/leanauth/authstack/authserver/internal/dbtest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

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
		worker := mail.NewWorker(st.Pool, sender(t, m), mail.WorkerOptions{Poll: 50 * time.Millisecond, Batch: 4})
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
