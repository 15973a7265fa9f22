// Package ratelimit holds request limits and account lockout in Redis, so
// every replica shares them. Limits are fixed windows: at most N events per
// window per key.
//
// Redis may be a single node or a Redis Cluster (redis.UniversalClient):
// every script touches one key, so keys in different hash slots are never
// used together. A check is one round trip (the counters are pipelined;
// a cluster client sends each to its node in parallel), plus one PTTL
// before them when an account lock applies.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/config"
)

const prefix = "authstack:rl:"

// Rule is one limit on one key (like "login-ip" on "203.0.113.9").
type Rule struct {
	Name  string
	Key   string
	Limit config.Limit
}

// Limiter checks limits and tracks login failures.
type Limiter struct {
	rdb       redis.UniversalClient
	lockAfter int
	lockBase  time.Duration
	lockMax   time.Duration
	memory    time.Duration
}

// New returns a Limiter; lockout settings come from rl.
func New(rdb redis.UniversalClient, rl config.RateLimits) *Limiter {
	return &Limiter{rdb: rdb, lockAfter: rl.LockoutAfter, lockBase: rl.LockoutBase, lockMax: rl.LockoutMax, memory: rl.FailureMemory}
}

// AccountKey turns an email into a key that does not store the address itself.
func AccountKey(email string) string {
	h := sha256.Sum256([]byte(email))
	return hex.EncodeToString(h[:12])
}

func lockKey(account string) string { return prefix + "lock:" + account }
func failKey(account string) string { return prefix + "fail:" + account }

// countScript: KEYS[1] is a counter, ARGV[1] its limit, ARGV[2] its window
// (ms). It counts the event and returns 0 while within the limit, else the
// time left in the window (ms).
var countScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n <= tonumber(ARGV[1]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]); ttl = tonumber(ARGV[2]) end
return ttl`)

// Allow counts one event against rules (and refuses while lockAccount, when
// not empty, is locked: then nothing is counted). It returns 0 when allowed,
// else how long to wait (the longest wait of the counters over their limit).
// When Redis fails, it allows (fails open) and returns the error for logging.
func (l *Limiter) Allow(ctx context.Context, lockAccount string, rules ...Rule) (time.Duration, error) {
	if lockAccount != "" && l.lockAfter > 0 {
		lock, err := l.rdb.PTTL(ctx, lockKey(lockAccount)).Result()
		if err != nil {
			return 0, err
		}
		if lock > 0 {
			return roundUp(lock.Milliseconds()), nil
		}
	}
	var cmds []*redis.Cmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range rules {
			if r.Limit.N <= 0 {
				continue
			}
			// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
			// Redis caches the compiled script by its hash either way.
			cmds = append(cmds, countScript.Eval(ctx, p, []string{prefix + r.Name + ":" + r.Key}, r.Limit.N, r.Limit.Window.Milliseconds()))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var wait int64
	for _, c := range cmds {
		ms, err := c.Int64()
		if err != nil {
			return 0, err
		}
		wait = max(wait, ms)
	}
	return roundUp(wait), nil
}

func roundUp(ms int64) time.Duration {
	if ms <= 0 {
		return 0
	}
	return time.Duration((ms+999)/1000) * time.Second
}

// failScript: count a failure (KEYS[1]); from the threshold on, return the
// lock to set: base*2^(failures-threshold), capped. The lock key lives in
// another hash slot, so the caller sets it.
var failScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local after = tonumber(ARGV[2])
if n < after then return 0 end
local lock = tonumber(ARGV[3]) * (2 ^ math.min(n - after, 30))
local cap = tonumber(ARGV[4])
if lock > cap then lock = cap end
return math.floor(lock)`)

// RecordFailure counts a failed login of account. It returns the lock
// duration when this failure locked the account, else 0.
func (l *Limiter) RecordFailure(ctx context.Context, account string) (time.Duration, error) {
	if l.lockAfter <= 0 {
		return 0, nil
	}
	ms, err := failScript.Run(ctx, l.rdb, []string{failKey(account)},
		l.memory.Milliseconds(), l.lockAfter, l.lockBase.Milliseconds(), l.lockMax.Milliseconds()).Int64()
	if err != nil {
		return 0, err
	}
	if ms <= 0 {
		return 0, nil
	}
	if err := l.rdb.Set(ctx, lockKey(account), "1", time.Duration(ms)*time.Millisecond).Err(); err != nil {
		return 0, fmt.Errorf("setting the account lock: %w", err)
	}
	return roundUp(ms), nil
}

// RecordSuccess resets the consecutive-failure count of account.
func (l *Limiter) RecordSuccess(ctx context.Context, account string) error {
	if l.lockAfter <= 0 {
		return nil
	}
	return l.rdb.Del(ctx, failKey(account)).Err()
}
