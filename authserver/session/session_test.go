package session_test

import (
	"context"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/dbtest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// countingDB is the real pool, counting the statements sent to it.
type countingDB struct {
	store.DBTX
	n atomic.Int64
}

func (c *countingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c.n.Add(1)
	return c.DBTX.Exec(ctx, sql, args...)
}
func (c *countingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.n.Add(1)
	return c.DBTX.Query(ctx, sql, args...)
}
func (c *countingDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.n.Add(1)
	return c.DBTX.QueryRow(ctx, sql, args...)
}

type fixture struct {
	st  *store.Store
	db  *countingDB
	rdb redis.UniversalClient
	m   *session.Manager
	u   store.User
}

func setup(t *testing.T) *fixture {
	t.Helper()
	r := testservers.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password(), MaxRetries: 1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	return setupWith(t, rdb)
}

// setupWith builds a fixture over rdb (a single-node or a cluster client).
func setupWith(t *testing.T, rdb redis.UniversalClient) *fixture {
	t.Helper()
	st := dbtest.Store(t)
	ctx := context.Background()
	u, _, err := store.InsertUser(ctx, st.Pool, "s@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	db := &countingDB{DBTX: st.Pool}
	m := session.NewManager(db, rdb, session.Options{TTL: time.Hour, TouchEvery: time.Minute})
	return &fixture{st: st, db: db, rdb: rdb, m: m, u: u}
}

func (f *fixture) login(t *testing.T) (string, session.Info) {
	t.Helper()
	tok, info, err := f.m.Create(context.Background(), f.st.Pool, f.u, "127.0.0.1", "test", session.LevelPassword)
	if err != nil {
		t.Fatal(err)
	}
	f.m.Cache(context.Background(), tok, info)
	// Caching opened Redis connections: the first cached validation after a
	// new connection loads the revocations once; do it here, outside the
	// statement counts of the tests.
	if err := f.m.SyncRevocations(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tok, info
}

// A cached session validates with no database statement at all, and the
// last_seen_at update is throttled to one per interval.
func TestHotPathHasNoDatabaseRoundTrip(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tok, info := f.login(t)
	before := f.db.n.Load()
	for i := 0; i < 200; i++ {
		got, err := f.m.Validate(ctx, tok)
		if err != nil || got.ID != info.ID || got.UserID != f.u.ID || got.Email != "s@example.com" {
			t.Fatalf("validate: %+v %v", got, err)
		}
	}
	if n := f.db.n.Load() - before; n != 0 {
		t.Fatalf("%d database statements for 200 cached validations", n)
	}
	// Touches are queued, not written inline: at most one per session per minute.
	if err := f.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.db.n.Load() - before; n > 1 {
		t.Fatalf("%d last_seen_at writes for one session within a minute", n)
	}
}

func TestFallbackToPostgresAndRecache(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tok, info := f.login(t)
	// Redis lost the session (flush, eviction or restart without persistence).
	if err := f.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before := f.db.n.Load()
	got, err := f.m.Validate(ctx, tok)
	if err != nil || got.ID != info.ID || !got.ExpiresAt.Equal(info.ExpiresAt) {
		t.Fatalf("validate from postgres: %+v %v (want %+v)", got, err, info)
	}
	if f.db.n.Load()-before != 1 {
		t.Fatalf("want one database lookup, got %d", f.db.n.Load()-before)
	}
	before = f.db.n.Load()
	if _, err := f.m.Validate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if f.db.n.Load() != before {
		t.Fatal("not re-cached after the fallback")
	}
}

func TestRevocationIsImmediateAndNotRecached(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tok, info := f.login(t)
	h, _ := session.HashToken(tok)
	if _, err := store.DeleteSession(ctx, f.st.Pool, f.u.ID, info.ID); err != nil {
		t.Fatal(err)
	}
	f.m.Forget(ctx, h[:])
	if _, err := f.m.Validate(ctx, tok); err != session.ErrInvalid {
		t.Fatalf("revoked session: %v", err)
	}
	// The previous release's tombstone key is set too (rolling upgrades).
	if n, err := f.rdb.Exists(ctx, "authstack:revoked:"+hex.EncodeToString(h[:])).Result(); err != nil || n != 1 {
		t.Fatalf("legacy tombstone: %d %v", n, err)
	}
	// A validation that read the row just before the revocation tries to
	// cache it afterwards: the tombstone refuses.
	f.m.Cache(ctx, tok, info)
	if _, err := f.m.Validate(ctx, tok); err != session.ErrInvalid {
		t.Fatalf("revoked session re-cached: %v", err)
	}
}

func TestMalformedAndExpiredTokens(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	for _, tok := range []string{"", "short", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", string(make([]byte, 43))} {
		if _, err := f.m.Validate(ctx, tok); err != session.ErrInvalid {
			t.Errorf("token %q: %v", tok, err)
		}
	}
	unknown, _ := session.NewToken()
	if _, err := f.m.Validate(ctx, unknown); err != session.ErrInvalid {
		t.Errorf("unknown token: %v", err)
	}
	tok, info := f.login(t)
	if _, err := f.st.Pool.Exec(ctx, "UPDATE sessions SET expires_at = now() - interval '1 s' WHERE id = $1", info.ID); err != nil {
		t.Fatal(err)
	}
	f.rdb.FlushAll(ctx)
	if _, err := f.m.Validate(ctx, tok); err != session.ErrInvalid {
		t.Errorf("expired session: %v", err)
	}
}

func TestTokensAreRandom256Bit(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tok, h := session.NewToken()
		if len(tok) != 43 || seen[tok] {
			t.Fatalf("bad or repeated token %q", tok)
		}
		seen[tok] = true
		if h2, ok := session.HashToken(tok); !ok || h2 != h {
			t.Fatal("HashToken disagrees with NewToken")
		}
	}
}

// TestWellFormed: exactly 43 bytes of the base64url alphabet, each byte
// value tried at each end of the token.
func TestWellFormed(t *testing.T) {
	tok, _ := session.NewToken()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for c := 0; c < 256; c++ {
		want := strings.IndexByte(alphabet, byte(c)) >= 0
		for _, probe := range []string{string([]byte{byte(c)}) + tok[1:], tok[:42] + string([]byte{byte(c)})} {
			if got := session.WellFormed(probe); got != want {
				t.Errorf("WellFormed with byte %#x = %v, want %v", c, got, want)
			}
			if _, ok := session.HashToken(probe); ok != want {
				t.Errorf("HashToken with byte %#x: ok %v, want %v", c, ok, want)
			}
		}
	}
	for _, bad := range []string{"", tok[:42], tok + "A", tok + " "} {
		if session.WellFormed(bad) {
			t.Errorf("WellFormed(%q) = true", bad)
		}
	}
}

func BenchmarkValidateCached(b *testing.B) {
	url := testservers.Postgres(b).NewDatabase(b)
	ctx := context.Background()
	if _, err := store.Migrate(ctx, url); err != nil {
		b.Fatal(err)
	}
	st, _ := store.Open(ctx, url)
	defer st.Close()
	r := testservers.Redis(b)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password()})
	defer rdb.Close()
	u, _, _ := store.InsertUser(ctx, st.Pool, "b@example.com", "x")
	m := session.NewManager(st.Pool, rdb, session.Options{TTL: time.Hour})
	tok, info, _ := m.Create(ctx, st.Pool, u, "", "", session.LevelPassword)
	m.Cache(ctx, tok, info)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
