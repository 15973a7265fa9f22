package resources

import (
	"context"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/app"
	authconfig "github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
)

// TestRedisEvictionDropsSessionsFirst fills the managed Redis (rendered
// configuration, default policy, a small maxmemory) with cached sessions
// through the authserver's own code: Redis evicts cached sessions, never the
// account lock, the rate-limit counter or the revocation marker written
// before them.
func TestRedisEvictionDropsSessionsFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := managedRedisStack()
	s.Spec.Redis.MaxMemory, s.Spec.Redis.MaxMemoryPolicy = "3mb", "" // the default policy
	pw, err := NewRedisPassword()
	if err != nil {
		t.Fatal(err)
	}
	srv := startRenderedRedis(t, s, string(pw))
	u, _ := url.Parse(RedisClientURL(s, string(pw)))
	u.Host = srv.Addr()
	rdb, err := app.NewRedis(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()

	// Written first: under an LRU policy they would be the first to go.
	l := ratelimit.New(rdb, authconfig.RateLimits{LockoutAfter: 1, LockoutBase: time.Hour, LockoutMax: time.Hour, FailureMemory: 24 * time.Hour})
	lock := ratelimit.Pair(ratelimit.AccountKey("victim@example.com"), "198.51.100.7")
	if d, err := l.RecordFailure(ctx, lock); err != nil || d == 0 {
		t.Fatalf("locking: %s %v", d, err)
	}
	rule := ratelimit.Rule{Name: "login-ip", Key: "203.0.113.9", Limit: authconfig.Limit{N: 1, Window: time.Hour}}
	if w, err := l.Allow(ctx, "", rule); err != nil || w != 0 {
		t.Fatalf("first event: %s %v", w, err)
	}
	m := session.NewManager(nil, rdb, session.Options{TTL: 24 * time.Hour})
	newInfo := func(i int) session.Info {
		now := time.Now()
		return session.Info{ID: strconv.Itoa(i), UserID: "u", Email: "user" + strconv.Itoa(i) + "@example.com", EmailVerified: true, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	}
	revokedTok, revokedHash := session.NewToken()
	m.Cache(ctx, revokedTok, newInfo(-1))
	m.Forget(ctx, revokedHash[:])
	tombKey := "authstack:session:" + hex.EncodeToString(revokedHash[:])
	if v, err := rdb.Get(ctx, tombKey).Result(); err != nil || v != "revoked" {
		t.Fatalf("tombstone not written: %q %v", v, err)
	}

	evicted := func() int64 {
		info, err := rdb.Info(ctx, "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "evicted_keys:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no evicted_keys in INFO")
		return 0
	}
	cached := 0
	for ; cached < 200000 && (cached%500 != 0 || evicted() < 2000); cached++ {
		tok, _ := session.NewToken()
		m.Cache(ctx, tok, newInfo(cached))
	}
	n := evicted()
	if n < 2000 {
		t.Fatalf("only %d keys evicted after caching %d sessions: no memory pressure", n, cached)
	}
	t.Logf("cached %d sessions, Redis evicted %d keys", cached, n)

	if w, err := l.Allow(ctx, lock); err != nil || w < 59*time.Minute {
		t.Errorf("the account lock was evicted: wait %s, %v", w, err)
	}
	if w, err := l.Allow(ctx, "", rule); err != nil || w == 0 {
		t.Errorf("the rate-limit counter was evicted: wait %s, %v", w, err)
	}
	if v, err := rdb.Get(ctx, tombKey).Result(); err != nil || v != "revoked" {
		t.Errorf("the revocation marker was evicted: %q %v", v, err)
	}
}
