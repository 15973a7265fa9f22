package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/internal/testservers"
)

func newLimiter(t *testing.T, rl config.RateLimits) (*ratelimit.Limiter, *redis.Client) {
	t.Helper()
	r := testservers.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password()})
	t.Cleanup(func() { rdb.Close() })
	return ratelimit.New(rdb, rl), rdb
}

// Two limiters on one Redis (two replicas) share the count exactly, even
// under concurrency.
func TestLimitSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	a, rdb := newLimiter(t, config.RateLimits{})
	b := ratelimit.New(rdb, config.RateLimits{})
	rule := ratelimit.Rule{Name: "login-ip", Key: "203.0.113.1", Limit: config.Limit{N: 10, Window: time.Minute}}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func(l *ratelimit.Limiter) {
			defer wg.Done()
			wait, err := l.Allow(context.Background(), "", rule)
			if err != nil {
				t.Error(err)
			}
			if wait == 0 {
				allowed.Add(1)
			} else if wait < 59*time.Second || wait > time.Minute {
				t.Errorf("wait %s", wait)
			}
		}([]*ratelimit.Limiter{a, b}[i%2])
	}
	wg.Wait()
	if allowed.Load() != 10 {
		t.Fatalf("allowed %d of 30, want 10", allowed.Load())
	}
	// Another key is independent; a disabled rule never limits.
	if w, _ := a.Allow(context.Background(), "", ratelimit.Rule{Name: "login-ip", Key: "203.0.113.2", Limit: rule.Limit}); w != 0 {
		t.Fatal("independent key limited")
	}
	if w, _ := a.Allow(context.Background(), "", ratelimit.Rule{Name: "x", Key: "y", Limit: config.Limit{}}); w != 0 {
		t.Fatal("disabled rule limited")
	}
}

func TestWindowExpires(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t, config.RateLimits{})
	rule := ratelimit.Rule{Name: "r", Key: "k", Limit: config.Limit{N: 1, Window: time.Second}}
	ctx := context.Background()
	if w, _ := l.Allow(ctx, "", rule); w != 0 {
		t.Fatal("first refused")
	}
	if w, _ := l.Allow(ctx, "", rule); w != time.Second {
		t.Fatalf("second: wait %s, want 1s", w)
	}
	time.Sleep(1100 * time.Millisecond)
	if w, _ := l.Allow(ctx, "", rule); w != 0 {
		t.Fatal("not allowed after the window")
	}
}

// Consecutive failures lock with growing delays; success resets the count.
func TestLockoutGrowsAndResets(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t, config.RateLimits{LockoutAfter: 3, LockoutBase: 2 * time.Second, LockoutMax: 5 * time.Second, FailureMemory: time.Hour})
	ctx := context.Background()
	acct := ratelimit.AccountKey("victim@example.com")
	var locks []time.Duration
	for i := 0; i < 5; i++ {
		d, err := l.RecordFailure(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		locks = append(locks, d)
	}
	want := []time.Duration{0, 0, 2 * time.Second, 4 * time.Second, 5 * time.Second}
	for i := range want {
		if locks[i] != want[i] {
			t.Fatalf("lock durations %v, want %v", locks, want)
		}
	}
	if w, _ := l.Allow(ctx, acct); w < 4*time.Second || w > 5*time.Second {
		t.Fatalf("locked account allowed or wrong wait: %s", w)
	}
	if err := l.RecordSuccess(ctx, acct); err != nil {
		t.Fatal(err)
	}
	// The count restarted: the next failure does not lock (the current lock still runs out).
	if d, _ := l.RecordFailure(ctx, acct); d != 0 {
		t.Fatalf("failure after success locked for %s", d)
	}
	if ratelimit.AccountKey("victim@example.com") == ratelimit.AccountKey("other@example.com") || len(acct) != 24 {
		t.Fatal("account keys")
	}
}

func TestRedisDownFailsOpenWithError(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	l := ratelimit.New(rdb, config.RateLimits{LockoutAfter: 3})
	w, err := l.Allow(context.Background(), "acct", ratelimit.Rule{Name: "r", Key: "k", Limit: config.Limit{N: 1, Window: time.Minute}})
	if err == nil || w != 0 {
		t.Fatalf("want allowed with an error, got %s %v", w, err)
	}
}

// Failures lock one client out of one account, never the account: the
// owner on another client still gets in. An IPv6 client is
// one client for its whole /64, so rotating addresses does not escape the
// lock; a completed reset (ClearAccount) lifts every client's lock.
func TestLockoutIsPerClient(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t, config.RateLimits{LockoutAfter: 2, LockoutBase: time.Minute, LockoutMax: time.Hour, FailureMemory: time.Hour})
	ctx := context.Background()
	acct := ratelimit.AccountKey("victim@example.com")
	attacker := ratelimit.Pair(acct, "2001:db8:1:2::1")
	for i := 0; i < 2; i++ {
		if _, err := l.RecordFailure(ctx, attacker); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(ip string) time.Duration {
		t.Helper()
		w, err := l.Allow(ctx, ratelimit.Pair(acct, ip))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := wait("2001:db8:1:2::1"); w < 59*time.Second {
		t.Fatalf("attacker not locked: wait %s", w)
	}
	if w := wait("2001:db8:1:2:ffff:ffff:ffff:fffe"); w < 59*time.Second {
		t.Fatalf("another address of the attacker's /64 escaped the lock: wait %s", w)
	}
	for _, owner := range []string{"198.51.100.9", "2001:db8:1:3::1", "::ffff:203.0.113.5"} {
		if w := wait(owner); w != 0 {
			t.Fatalf("the owner on %s is locked out by another client: wait %s", owner, w)
		}
	}
	if err := l.ClearAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if w := wait("2001:db8:1:2::1"); w != 0 {
		t.Fatalf("ClearAccount left a lock: wait %s", w)
	}
}

// Every per-IP limit counts an IPv6 client by its /64 and an IPv4-mapped
// address as the IPv4 address.
func TestIPv6ClientsCountedBySlash64(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t, config.RateLimits{})
	ctx := context.Background()
	lim := config.Limit{N: 2, Window: time.Minute}
	allow := func(ip string) time.Duration {
		t.Helper()
		w, err := l.Allow(ctx, "", ratelimit.Rule{Name: "signup-ip", Key: ip, Limit: lim})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if allow("2001:db8::1") != 0 || allow("2001:db8::2") != 0 {
		t.Fatal("first two refused")
	}
	if w := allow("2001:db8::ffff:1234"); w == 0 {
		t.Fatal("a third address of the same /64 was not counted with the first two")
	}
	if w := allow("2001:db8:0:1::1"); w != 0 {
		t.Fatal("another /64 was limited")
	}
	if allow("203.0.113.5") != 0 || allow("::ffff:203.0.113.5") != 0 || allow("203.0.113.5") == 0 {
		t.Fatal("an IPv4-mapped address is not counted as its IPv4 address")
	}
	for ip, want := range map[string]string{"2001:db8:a:b:c:d:e:f": "2001:db8:a:b::/64", "192.0.2.1": "192.0.2.1", "::ffff:192.0.2.1": "192.0.2.1", "not-an-ip": "not-an-ip"} {
		if got := ratelimit.ClientKey(ip); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", ip, got, want)
		}
	}
}
