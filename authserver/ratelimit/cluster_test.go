package ratelimit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/internal/testservers"
)

// The login flow's limits and lockout on a real 3-primary Redis Cluster,
// through the client app.NewRedis builds from the cluster REDIS_URL form.
// The per-IP counter, the per-account counter and the lock key are in
// different hash slots (checked), yet every call works and counts exactly.
func TestLimitsAndLockoutOnRedisCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := testservers.RedisCluster(t, 3)
	rdb, err := app.NewRedis(cl.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("app.NewRedis(cluster URL) built a %T, want *redis.ClusterClient", rdb)
	}
	l := ratelimit.New(rdb, config.RateLimits{LockoutAfter: 3, LockoutBase: 2 * time.Second, LockoutMax: 5 * time.Second, FailureMemory: time.Hour})
	acct := ratelimit.AccountKey("cluster-victim@example.com")
	ipRule := ratelimit.Rule{Name: "login-ip", Key: "203.0.113.7", Limit: config.Limit{N: 5, Window: time.Minute}}
	acctRule := ratelimit.Rule{Name: "login-account", Key: acct, Limit: config.Limit{N: 3, Window: time.Minute}}
	slots := map[int64]bool{}
	for _, k := range []string{"authstack:rl:login-ip:203.0.113.7", "authstack:rl:login-account:" + acct, "authstack:rl:acct:" + acct} {
		s, err := cc.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[s] = true
	}
	if len(slots) < 2 {
		t.Fatalf("the test keys share one hash slot: it would not catch a cross-slot script")
	}

	// The account limit (3) trips first; the call it refused is taken back
	// from the IP counter (another hash slot).
	for i := 1; i <= 4; i++ {
		w, err := l.Allow(ctx, acct, ipRule, acctRule)
		if err != nil {
			t.Fatalf("allow %d on the cluster: %v", i, err)
		}
		if (i <= 3) != (w == 0) || (w != 0 && (w < 59*time.Second || w > time.Minute)) {
			t.Fatalf("allow %d: wait %s", i, w)
		}
	}
	if v, err := cc.Get(ctx, "authstack:rl:login-ip:203.0.113.7").Result(); err != nil || !strings.HasSuffix(v, ":3") {
		t.Fatalf("ip counter %q (%v), want the 3 allowed events", v, err)
	}

	// Lockout: the third failure locks for 2 s, the fourth for 4 s.
	var locks []time.Duration
	for i := 0; i < 4; i++ {
		d, err := l.RecordFailure(ctx, acct)
		if err != nil {
			t.Fatalf("failure %d on the cluster: %v", i+1, err)
		}
		locks = append(locks, d)
	}
	if locks[0] != 0 || locks[1] != 0 || locks[2] != 2*time.Second || locks[3] != 4*time.Second {
		t.Fatalf("lock durations %v", locks)
	}
	// Locked: refused at once and nothing counted.
	if w, err := l.Allow(ctx, acct, ipRule); err != nil || w < 3*time.Second || w > 4*time.Second {
		t.Fatalf("locked account: wait %s, %v", w, err)
	}
	if v, _ := cc.Get(ctx, "authstack:rl:login-ip:203.0.113.7").Result(); !strings.HasSuffix(v, ":3") {
		t.Fatalf("a refused (locked) call counted: ip counter %q", v)
	}
	if err := l.RecordSuccess(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if d, err := l.RecordFailure(ctx, acct); err != nil || d != 0 {
		t.Fatalf("failure after success: lock %s, %v", d, err)
	}
	// Another account is neither limited nor locked.
	other := ratelimit.AccountKey("other@example.com")
	if w, err := l.Allow(ctx, other, ratelimit.Rule{Name: "login-account", Key: other, Limit: acctRule.Limit}); err != nil || w != 0 {
		t.Fatalf("other account: wait %s, %v", w, err)
	}
}
