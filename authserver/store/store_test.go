package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/dbtest"

	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// Migrations are idempotent and safe when several processes run them at once.
func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	t.Parallel()
	url := testservers.Postgres(t).NewDatabase(t)
	ctx := context.Background()
	const n = 6
	results := make([][]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = store.Migrate(ctx, url)
		}(i)
	}
	wg.Wait()
	appliedBy := 0
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("migrate %d: %v", i, errs[i])
		}
		if len(results[i]) > 0 {
			appliedBy++
			if len(results[i]) != len(mustMigrations(t)) {
				t.Fatalf("partial apply: %v", results[i])
			}
		}
	}
	if appliedBy != 1 {
		t.Fatalf("%d runs applied migrations, want exactly 1", appliedBy)
	}
	again, err := store.Migrate(ctx, url)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run applied %v, %v", again, err)
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := st.SchemaVersion(ctx)
	if err != nil || v != store.LatestVersion() || v < 1 {
		t.Fatalf("schema version %d (want %d): %v", v, store.LatestVersion(), err)
	}
	var tables int
	if err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'
		AND table_name IN ('users','sessions','email_tokens','outbox','audit_logs','schema_migrations')`).Scan(&tables); err != nil || tables != 6 {
		t.Fatalf("tables: %d %v", tables, err)
	}
	for _, idx := range []string{"idx_sessions_user_id", "idx_sessions_expires_at", "idx_audit_logs_at", "idx_audit_logs_user_id"} {
		var ok bool
		if err := st.Pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = $1)", idx).Scan(&ok); err != nil || !ok {
			t.Errorf("index %s missing", idx)
		}
	}
}

func mustMigrations(t *testing.T) []store.Migration {
	ms, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestSchemaVersionBeforeMigrate(t *testing.T) {
	t.Parallel()
	url := testservers.Postgres(t).NewDatabase(t)
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, err := st.SchemaVersion(context.Background()); err != nil || v != 0 {
		t.Fatalf("version %d %v", v, err)
	}
}

// Every query works through pgbouncer 1.18 in transaction mode (no
// prepared statements), including concurrent transactions.
func TestQueriesThroughPgBouncerTransactionMode(t *testing.T) {
	t.Parallel()
	direct := testservers.Postgres(t).NewDatabase(t)
	ctx := context.Background()
	if _, err := store.Migrate(ctx, direct); err != nil {
		t.Fatal(err)
	}
	pooled := testservers.PgBouncer(t, direct).URL()
	st, err := store.Open(ctx, pooled)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- exercise(ctx, st, i)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func exercise(ctx context.Context, st *store.Store, i int) error {
	email := "user" + string(rune('a'+i)) + "@example.com"
	for round := 0; round < 5; round++ {
		var uid string
		err := st.InTx(ctx, func(tx store.DBTX) error {
			u, _, err := store.InsertUser(ctx, tx, email, "$argon2id$hash")
			if err != nil {
				return err
			}
			uid = u.ID
			if err := store.InsertEmailToken(ctx, tx, u.ID, store.PurposeVerify, []byte{byte(i), byte(round), 1}, time.Hour); err != nil {
				return err
			}
			if _, err := store.InsertOutbox(ctx, tx, store.OutboxMessage{Kind: "verify", To: email, Subject: "s", Text: "t", HTML: "h"}); err != nil {
				return err
			}
			s := store.Session{TokenHash: []byte{byte(i), byte(round), 2}, UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}
			if err := store.InsertSession(ctx, tx, &s); err != nil {
				return err
			}
			return store.InsertAudit(ctx, tx, store.AuditEntry{UserID: u.ID, Kind: "SIGNUP", Details: map[string]any{"round": round}})
		})
		if err != nil {
			return err
		}
		if _, err := store.ConsumeEmailToken(ctx, st.Pool, store.PurposeVerify, []byte{byte(i), byte(round), 1}, uid); err != nil {
			return err
		}
		s, err := store.SessionByTokenHash(ctx, st.Pool, []byte{byte(i), byte(round), 2}, time.Hour)
		if err != nil || s.UserID != uid || s.Email != email {
			return err
		}
		if err := store.TouchSessions(ctx, st.Pool, []string{s.ID}); err != nil {
			return err
		}
		if _, err := store.ListSessions(ctx, st.Pool, uid, time.Hour); err != nil {
			return err
		}
		if _, err := store.ClaimOutbox(ctx, st.Pool, 5, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// Many workers claiming at once never get the same outbox row.
func TestClaimOutboxNeverTwice(t *testing.T) {
	t.Parallel()
	st := dbtest.Store(t)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		if _, err := store.InsertOutbox(ctx, st.Pool, store.OutboxMessage{Kind: "verify", To: "a@b.co", Subject: "s", Text: "t", HTML: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msgs, err := store.ClaimOutbox(ctx, st.Pool, 7, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(msgs) == 0 {
					return
				}
				mu.Lock()
				for _, m := range msgs {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Fatalf("claimed %d distinct rows, want 200", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d claimed %d times", id, n)
		}
	}
}

// An SMTP reply is not always UTF-8 (a relay may answer in Latin-1): the
// outcome of a message is recorded anyway, or the message would be sent
// again once its lease ran out.
func TestNonUTF8SMTPReplyIsRecorded(t *testing.T) {
	t.Parallel()
	st := dbtest.Store(t)
	ctx := context.Background()
	for range 2 {
		if _, err := store.InsertOutbox(ctx, st.Pool, store.OutboxMessage{Kind: "verify", To: "a@b.co", Subject: "s", Text: "t", HTML: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := store.ClaimOutbox(ctx, st.Pool, 2, time.Minute)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("claimed %d: %v", len(msgs), err)
	}
	reply := "550 Empf\xe4nger unbekannt"
	if err := store.MarkOutboxFailed(ctx, st.Pool, msgs[0].ID, msgs[0].Lease, reply); err != nil {
		t.Errorf("recording a rejection with a Latin-1 reply: %v", err)
	}
	if err := store.MarkOutboxRetry(ctx, st.Pool, msgs[1].ID, msgs[1].Lease, time.Minute, "451 "+reply[4:]); err != nil {
		t.Errorf("recording a retry with a Latin-1 reply: %v", err)
	}
}
