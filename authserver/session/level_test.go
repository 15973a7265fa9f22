package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/session"
)

// The level and authentication time travel with a session through Redis and
// through PostgreSQL; an entry cached by the previous release ("1|...", no
// level) still answers from Redis, as a password session authenticated when
// it was created; a re-authentication replaces the cached copy.
func TestLevelInCacheAndRows(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tok, info, err := f.m.Create(ctx, f.st.Pool, f.u, "127.0.0.1", "test", session.LevelMFA)
	if err != nil || info.Level != session.LevelMFA || info.AuthAt.IsZero() {
		t.Fatalf("create: %+v %v", info, err)
	}
	f.m.Cache(ctx, tok, info)
	if err := f.m.SyncRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(tok))
	key := "authstack:session:" + hex.EncodeToString(h[:])
	for _, from := range []string{"redis", "postgres"} {
		if from == "postgres" {
			if err := f.rdb.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := f.m.Validate(ctx, tok)
		if err != nil || got.Level != session.LevelMFA || !got.AuthAt.Equal(info.AuthAt) {
			t.Fatalf("from %s: %+v %v", from, got, err)
		}
	}
	// An entry of the previous release.
	old := fmt.Sprintf("1|%s|%s|1|%d|%d|s@example.com", info.ID, f.u.ID, info.CreatedAt.Unix(), info.ExpiresAt.Unix())
	if err := f.rdb.Set(ctx, key, old, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	before := f.db.n.Load()
	got, err := f.m.Validate(ctx, tok)
	if err != nil || got.Level != session.LevelPassword || !got.AuthAt.Equal(info.CreatedAt) || f.db.n.Load() != before {
		t.Fatalf("version 1 entry: %+v %v (%d statements)", got, err, f.db.n.Load()-before)
	}
	// Re-authenticated: the row and the cached copy change.
	now, err := f.m.Reauthenticated(ctx, f.st.Pool, got, session.LevelPasskey)
	if err != nil || now.Level != session.LevelPasskey {
		t.Fatalf("reauthenticated: %+v %v", now, err)
	}
	f.m.Recache(ctx, now)
	if got, err := f.m.Validate(ctx, tok); err != nil || got.Level != session.LevelPasskey {
		t.Fatalf("after re-authentication: %+v %v", got, err)
	}
	if !session.Satisfies(session.LevelPasskey, session.LevelMFA) || session.Satisfies(session.LevelPassword, session.LevelMFA) ||
		session.Satisfies(session.LevelMFA, "") || session.Satisfies("", session.LevelPassword) {
		t.Fatal("Satisfies")
	}
}
