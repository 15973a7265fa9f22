package session_test

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// A session unused for the idle timeout ends, on the Redis fast
// path and on the PostgreSQL fallback, while one in use never does, although
// last_seen_at is written only once per touch interval (batched).
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const idle, touch = 2 * time.Second, 300 * time.Millisecond // wide enough for a loaded machine
	f.m = session.NewManager(f.db, f.rdb, session.Options{TTL: time.Hour, Idle: idle, TouchEvery: touch})
	ctx := context.Background()
	tok, _ := f.login(t)

	// In use (every 150 ms, touches flushed as the background loop would):
	// valid well past the idle timeout since its creation.
	for start := time.Now(); time.Since(start) < 2*idle; time.Sleep(150 * time.Millisecond) {
		if _, err := f.m.Validate(ctx, tok); err != nil {
			t.Fatalf("a session in use ended after %s: %v", time.Since(start), err)
		}
		if err := f.m.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Unused for longer than the timeout plus the touch interval (the most
	// the recorded last use can lag): ended, although its Redis entry was
	// written with the absolute lifetime in mind.
	time.Sleep(idle + touch + 100*time.Millisecond)
	if _, err := f.m.Validate(ctx, tok); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("idle session: %v, want invalid", err)
	}

	// The PostgreSQL fallback alone (nothing cached) decides the same.
	tok2, info2 := f.login(t)
	if _, err := f.rdb.Del(ctx, cacheKeyOf(tok2)).Result(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Validate(ctx, tok2); err != nil {
		t.Fatalf("fresh session through PostgreSQL: %v", err)
	}
	if _, err := f.st.Pool.Exec(ctx, "UPDATE sessions SET last_seen_at = now() - interval '3 seconds' WHERE id = $1", info2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rdb.Del(ctx, cacheKeyOf(tok2)).Result(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Validate(ctx, tok2); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("idle session through PostgreSQL: %v, want invalid", err)
	}
	// Nor are idle sessions listed as the user's sessions.
	if ss, err := store.ListSessions(ctx, f.st.Pool, f.u.ID, f.m.IdleWindow()); err != nil || len(ss) != 0 {
		t.Fatalf("listed %d idle sessions (%v)", len(ss), err)
	}
}

// cacheKeyOf is the Redis key of a token's cached session (cacheKey in session.go).
func cacheKeyOf(tok string) string {
	h, _ := session.HashToken(tok)
	return "authstack:session:" + hex.EncodeToString(h[:])
}
