package housekeeping_test

import (
	"context"
	"fmt"
	"github.com/leanauth/authstack/authserver/internal/dbtest"
	"sync"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/housekeeping"
	"github.com/leanauth/authstack/authserver/store"
)

func count(t *testing.T, st *store.Store, q string) int {
	t.Helper()
	var n int64
	if err := st.Pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// Several sweepers at once delete exactly what is expired, in small
// batches, and keep everything else.
func TestSweepersDeleteOnlyExpired(t *testing.T) {
	t.Parallel()
	st := dbtest.Store(t)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := st.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("INSERT INTO users (email, password_hash) VALUES ('a@b.co', 'x')")
	// 130 expired and 20 live sessions.
	exec(`INSERT INTO sessions (token_hash, user_id, expires_at)
		SELECT decode(md5(g::text), 'hex'), (SELECT id FROM users), now() - interval '1 minute' FROM generate_series(1, 130) g`)
	exec(`INSERT INTO sessions (token_hash, user_id, expires_at)
		SELECT decode(md5('live' || g::text), 'hex'), (SELECT id FROM users), now() + interval '1 hour' FROM generate_series(1, 20) g`)
	// Tokens: expired, used long ago, used just now (kept for grace), live.
	exec(`INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at, used_at) VALUES
		('\x01', (SELECT id FROM users), 'verify', now() - interval '1 s', NULL),
		('\x02', (SELECT id FROM users), 'verify', now() + interval '1 h', now() - interval '2 h'),
		('\x03', (SELECT id FROM users), 'reset', now() + interval '1 h', now()),
		('\x04', (SELECT id FROM users), 'reset', now() + interval '1 h', NULL)`)
	// Outbox: sent two days ago (deleted), sent now (kept), pending old (kept).
	exec(`INSERT INTO outbox (kind, to_addr, subject, text_body, html_body, created_at, sent_at) VALUES
		('verify', 'a@b.co', 's', '', '', now() - interval '2 days', now() - interval '2 days'),
		('verify', 'a@b.co', 's', '', '', now(), now())`)
	exec(`INSERT INTO outbox (kind, to_addr, subject, text_body, html_body, created_at) VALUES
		('verify', 'a@b.co', 's', 't', 'h', now() - interval '3 days')`)
	// Audit: 40 past retention, 5 recent.
	exec(`INSERT INTO audit_logs (kind, at) SELECT 'LOGIN_FAIL', now() - interval '100 days' FROM generate_series(1, 40)`)
	exec(`INSERT INTO audit_logs (kind, at) SELECT 'LOGIN_FAIL', now() - interval '1 day' FROM generate_series(1, 5)`)
	// WebAuthn ceremonies: 9 expired, 2 live.
	exec(`INSERT INTO webauthn_challenges (challenge_hash, kind, data, expires_at)
		SELECT decode(md5('c' || g::text), 'hex'), 'login', '{}', now() - interval '1 s' FROM generate_series(1, 9) g`)
	exec(`INSERT INTO webauthn_challenges (challenge_hash, kind, data, expires_at)
		SELECT decode(md5('l' || g::text), 'hex'), 'login', '{}', now() + interval '5 min' FROM generate_series(1, 2) g`)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var total housekeeping.Result
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := housekeeping.New(st.Pool, housekeeping.Options{Batch: 7, AuditRetention: 90 * 24 * time.Hour, Pause: time.Millisecond})
			res, err := s.SweepOnce(ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total.Sessions += res.Sessions
			total.EmailTokens += res.EmailTokens
			total.Outbox += res.Outbox
			total.Audit += res.Audit
			total.Ceremonies += res.Ceremonies
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != (housekeeping.Result{Sessions: 130, EmailTokens: 2, Outbox: 1, Audit: 40, Ceremonies: 9}) {
		t.Fatalf("deleted %+v", total)
	}
	for q, want := range map[string]int{
		"SELECT count(*) FROM sessions":                          20,
		"SELECT count(*) FROM sessions WHERE expires_at < now()": 0,
		"SELECT count(*) FROM email_tokens":                      2,
		"SELECT count(*) FROM outbox":                            2,
		"SELECT count(*) FROM audit_logs":                        5,
		"SELECT count(*) FROM webauthn_challenges":               2,
	} {
		if got := count(t, st, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	_ = fmt.Sprint()
}
