// Package ratelimit holds request limits and account lockout in Redis, so
// every replica shares them. Each check is one Lua script call (one round
// trip). Limits are fixed windows: at most N events per window per key.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	rdb       *redis.Client
	lockAfter int
	lockBase  time.Duration
	lockMax   time.Duration
	memory    time.Duration
}

// New returns a Limiter; lockout settings come from rl.
func New(rdb *redis.Client, rl config.RateLimits) *Limiter {
	return &Limiter{rdb: rdb, lockAfter: rl.LockoutAfter, lockBase: rl.LockoutBase, lockMax: rl.LockoutMax, memory: rl.FailureMemory}
}

// AccountKey turns an email into a key that does not store the address itself.
func AccountKey(email string) string {
	h := sha256.Sum256([]byte(email))
	return hex.EncodeToString(h[:12])
}

func lockKey(account string) string { return prefix + "lock:" + account }
func failKey(account string) string { return prefix + "fail:" + account }

// allowScript: KEYS[1] is a lock key ("" slot allowed as a never-set key),
// KEYS[2..] counters; ARGV holds limit,window_ms pairs. A set lock refuses
// at once without counting; otherwise every counter counts the event and
// the longest wait of the counters over their limit is returned.
var allowScript = redis.NewScript(`
local lock = redis.call('PTTL', KEYS[1])
if lock > 0 then return lock end
local wait = 0
for i = 2, #KEYS do
  local limit = tonumber(ARGV[2*i-3])
  local window = tonumber(ARGV[2*i-2])
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], window) end
  if n > limit then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then redis.call('PEXPIRE', KEYS[i], window); ttl = window end
    if ttl > wait then wait = ttl end
  end
end
return wait`)

// Allow counts one event against rules (and refuses while lockAccount, when
// not empty, is locked). It returns 0 when allowed, else how long to wait.
// When Redis fails, it allows (fails open) and returns the error for logging.
func (l *Limiter) Allow(ctx context.Context, lockAccount string, rules ...Rule) (time.Duration, error) {
	keys := make([]string, 0, len(rules)+1)
	args := make([]any, 0, 2*len(rules))
	if lockAccount != "" && l.lockAfter > 0 {
		keys = append(keys, lockKey(lockAccount))
	} else {
		keys = append(keys, prefix+"nolock")
	}
	for _, r := range rules {
		if r.Limit.N <= 0 {
			continue
		}
		keys = append(keys, prefix+r.Name+":"+r.Key)
		args = append(args, r.Limit.N, r.Limit.Window.Milliseconds())
	}
	if len(keys) == 1 && keys[0] == prefix+"nolock" {
		return 0, nil
	}
	ms, err := allowScript.Run(ctx, l.rdb, keys, args...).Int64()
	if err != nil {
		return 0, err
	}
	return roundUp(ms), nil
}

func roundUp(ms int64) time.Duration {
	if ms <= 0 {
		return 0
	}
	return time.Duration((ms+999)/1000) * time.Second
}

// failScript: count a failure; from the threshold on, lock for
// base*2^(failures-threshold), capped.
var failScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local after = tonumber(ARGV[2])
if n < after then return 0 end
local lock = tonumber(ARGV[3]) * (2 ^ math.min(n - after, 30))
local cap = tonumber(ARGV[4])
if lock > cap then lock = cap end
redis.call('SET', KEYS[2], '1', 'PX', math.floor(lock))
return math.floor(lock)`)

// RecordFailure counts a failed login of account. It returns the lock
// duration when this failure locked the account, else 0.
func (l *Limiter) RecordFailure(ctx context.Context, account string) (time.Duration, error) {
	if l.lockAfter <= 0 {
		return 0, nil
	}
	ms, err := failScript.Run(ctx, l.rdb, []string{failKey(account), lockKey(account)},
		l.memory.Milliseconds(), l.lockAfter, l.lockBase.Milliseconds(), l.lockMax.Milliseconds()).Int64()
	if err != nil {
		return 0, err
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
