package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/internal/dbtest"
	"github.com/leanauth/authstack/authserver/store"
)

func newSession(userID string) *store.Session {
	h := make([]byte, 32)
	rand.Read(h)
	return &store.Session{TokenHash: h, UserID: userID, ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second),
		IP: "192.0.2.7", UserAgent: "test/1", AuthMethod: "password"}
}

// The one-statement login writes the session and its audit row only while the
// verified hash is still the user's and the user has no second factor.
func TestOpenPasswordSession(t *testing.T) {
	t.Parallel()
	st := dbtest.Store(t)
	ctx := context.Background()
	u, _, err := store.InsertUser(ctx, st.Pool, "open@example.com", "hash-1")
	if err != nil {
		t.Fatal(err)
	}
	count := func(table string) (n int) {
		t.Helper()
		if err := st.Pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE user_id = $1::uuid", u.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	s := newSession(u.ID)
	now, err := store.OpenPasswordSession(ctx, st.Pool, "hash-1", s, "LOGIN_SUCCESS")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if now.ID != u.ID || now.Email != u.Email || now.PasswordHash != "hash-1" || !now.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("user %+v, want %+v", now, u)
	}
	if s.ID == "" || s.CreatedAt.IsZero() || s.AuthAt.IsZero() || s.LastSeenAt.IsZero() {
		t.Fatalf("session not filled in: %+v", s)
	}
	got, err := store.SessionByTokenHash(ctx, st.Pool, s.TokenHash, 0)
	if err != nil || got.ID != s.ID || got.UserAgent != "test/1" || got.AuthMethod != "password" {
		t.Fatalf("stored session %+v, %v", got, err)
	}
	var details string
	if err := st.Pool.QueryRow(ctx, "SELECT details::text FROM audit_logs WHERE user_id = $1::uuid AND kind = 'LOGIN_SUCCESS'", u.ID).
		Scan(&details); err != nil || details != `{"method": "password", "session_id": "`+s.ID+`"}` {
		t.Fatalf("audit details %q, %v", details, err)
	}

	// A hash other than the verified one: nothing written, the user as stored.
	now, err = store.OpenPasswordSession(ctx, st.Pool, "hash-0", newSession(u.ID), "LOGIN_SUCCESS")
	if !errors.Is(err, store.ErrHashChanged) || now.PasswordHash != "hash-1" {
		t.Fatalf("changed hash: %+v, %v", now, err)
	}
	// A passkey is a second factor: no session, the caller makes a challenge.
	if _, err := st.Pool.Exec(ctx, `INSERT INTO passkeys (user_id, rp_id, credential_id, public_key)
		VALUES ($1::uuid, 'example.com', 'cred', 'key')`, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenPasswordSession(ctx, st.Pool, "hash-1", newSession(u.ID), "LOGIN_SUCCESS"); !errors.Is(err, store.ErrHasFactor) {
		t.Fatalf("with a passkey: %v", err)
	}
	// A user that is gone.
	if _, err := store.OpenPasswordSession(ctx, st.Pool, "hash-1", newSession("00000000-0000-0000-0000-000000000001"), "LOGIN_SUCCESS"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if n := count("sessions"); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	if n := count("audit_logs"); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}
}

// A second factor confirmed by a writer holding the user's lock while the login
// waits for that lock is seen by the login: the factors are read after the lock,
// not from the snapshot the statement started with.
func TestOpenPasswordSessionSeesAFactorAddedWhileItWaited(t *testing.T) {
	t.Parallel()
	st := dbtest.Store(t)
	ctx := context.Background()
	u, _, err := store.InsertUser(ctx, st.Pool, "race@example.com", "hash-1")
	if err != nil {
		t.Fatal(err)
	}
	writer, err := st.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback(ctx)
	if _, err := store.LockUser(ctx, writer, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutPendingTOTP(ctx, writer, u.ID, []byte("secret"), "k1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := store.ConfirmTOTP(ctx, writer, u.ID, []byte("secret"), 1); !ok || err != nil {
		t.Fatalf("confirm: %v %v", ok, err)
	}

	done := make(chan error, 1)
	conn, err := st.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := store.OpenPasswordSession(ctx, conn, "hash-1", newSession(u.ID), "LOGIN_SUCCESS")
		done <- err
	}()
	// The login's statement starts (and takes its snapshot) before the writer
	// commits: wait until PostgreSQL shows it waiting for the lock.
	for {
		var waiting bool
		if err := st.Pool.QueryRow(ctx, "SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1", pid).
			Scan(&waiting); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the login did not wait for the lock: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := writer.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, store.ErrHasFactor) {
		t.Fatalf("login after a factor was confirmed under the lock: %v, want ErrHasFactor", err)
	}
}
