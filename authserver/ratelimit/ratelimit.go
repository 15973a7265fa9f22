// Package ratelimit holds request limits and account lockout in Redis, so
// every replica shares them. Limits are fixed windows: at most N events per
// window per key.
//
// Redis may be a single node or a Redis Cluster (redis.UniversalClient):
// every script touches one key, so keys in different hash slots are never
// used together. A check is one round trip (the counters are pipelined;
// a cluster client sends each to its node in parallel), plus one script
// before them when an account lock applies, plus one after them when a
// counter refuses (the others take the event back).
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/config"
)

const prefix = "authstack:rl:"

// Keep is how much longer than its useful life every key of this package
// lives in Redis. The managed Redis evicts with volatile-ttl (shortest
// remaining TTL first); a cached session lives at most an hour
// (authserver/session, maxCache), so while a counter's window or a lock is
// running its key has more than Keep left and every cached session is
// evicted before it. See authserver/DESIGN.md, "Redis memory".
const Keep = 65 * time.Minute

// Rule is one limit on one key (like "login-ip" on "203.0.113.9"). A key
// that is an IP address is counted by ClientKey (IPv6 by its /64).
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

// ClientKey is how a client address is counted: an IPv4 address as it is,
// an IPv6 address by its /64 (one subscriber or host usually holds a whole
// /64, so counting single addresses would give each client 2^64 budgets).
// Anything that is not an IP address is returned unchanged.
func ClientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// Pair names the lockout of account as seen from one client (its IP): the
// failures of one client lock that client out of that account, never the
// owner on another client. Pass it to Allow, RecordFailure and RecordSuccess.
func Pair(account, clientIP string) string {
	return account + "|" + ClientKey(clientIP)
}

// splitPair returns the account and client of a Pair (client "" for a bare account).
func splitPair(pair string) (account, client string) {
	account, client, _ = strings.Cut(pair, "|")
	return account, client
}

// accountKey is the hash of an account's failures: one field per client,
// "failures:lockedUntilMs:lastFailureMs". One key per account, so that
// ClearAccount is one DEL and every script touches one key (cluster).
func accountKey(account string) string { return prefix + "acct:" + account }

// countScript: KEYS[1] is a counter "windowStartMs:n", ARGV[1] its limit,
// ARGV[2] its window (ms), ARGV[3] the key's TTL beyond its window (Keep).
// It counts the event and returns {0, window start} while within the
// limit, else {the time left in the window, window start} (ms). The window
// is kept in the value, not in the key's TTL, so that the key can outlive
// its window (see Keep).
var countScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = tonumber(ARGV[2])
local start, n = now, 0
local v = redis.call('GET', KEYS[1])
if v then
  local s, c = string.match(v, '^(%d+):(%d+)$')
  if s and now - tonumber(s) < win then start, n = tonumber(s), tonumber(c) end
end
n = n + 1
redis.call('SET', KEYS[1], string.format('%d:%d', start, n), 'PX', win + tonumber(ARGV[3]))
if n <= tonumber(ARGV[1]) then return {0, start} end
return {math.max(start + win - now, 1), start}`)

// uncountScript takes back an event countScript counted in the window that
// began at ARGV[1] (ms), if that window is still the counter's.
var uncountScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local s, c = string.match(v, '^(%d+):(%d+)$')
if s ~= ARGV[1] or tonumber(c) < 1 then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('SET', KEYS[1], string.format('%s:%d', s, tonumber(c) - 1), 'PX', ttl) end
return 0`)

// lockScript: KEYS[1] is an account's failure hash, ARGV[1] the client;
// returns the ms left of that client's lock (0 when none).
var lockScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local u = tonumber(string.match(v, '^%d+:(%d+):'))
if not u then return 0 end
local t = redis.call('TIME')
local left = u - (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if left > 0 then return left end
return 0`)

// Allow counts one event against rules (and refuses while lock, a Pair or
// an account, is locked: then nothing is counted). It returns 0 when
// allowed, else how long to wait (the longest wait of the counters over
// their limit). An event refused by one rule is taken back from the
// others: a client over its own limit does not spend another key's (a
// victim account's) allowance. When Redis fails, it allows (fails open)
// and returns the error for logging.
func (l *Limiter) Allow(ctx context.Context, lock string, rules ...Rule) (time.Duration, error) {
	if lock != "" && l.lockAfter > 0 {
		account, client := splitPair(lock)
		ms, err := lockScript.Run(ctx, l.rdb, []string{accountKey(account)}, client).Int64()
		if err != nil {
			return 0, err
		}
		if ms > 0 {
			return roundUp(ms), nil
		}
	}
	var keys []string
	var cmds []*redis.Cmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range rules {
			if r.Limit.N <= 0 {
				continue
			}
			// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
			// Redis caches the compiled script by its hash either way.
			key := prefix + r.Name + ":" + ClientKey(r.Key)
			keys = append(keys, key)
			cmds = append(cmds, countScript.Eval(ctx, p, []string{key},
				r.Limit.N, r.Limit.Window.Milliseconds(), Keep.Milliseconds()))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var wait int64
	starts := make([]int64, len(cmds))
	for i, c := range cmds {
		v, err := c.Int64Slice()
		if err == nil && len(v) != 2 {
			err = fmt.Errorf("reply %v", v)
		}
		if err != nil {
			return 0, fmt.Errorf("counting rule %d of %d: %w", i+1, len(cmds), err)
		}
		wait, starts[i] = max(wait, v[0]), v[1]
		if v[0] > 0 {
			starts[i] = -1 // over its limit: nothing to take back
		}
	}
	if wait > 0 && len(cmds) > 1 {
		// Best effort: the refusal stands whether or not Redis takes the
		// event back (an error here must not turn it into fail-open).
		// Not cancelled with the request: a client that hangs up must not
		// leave its event on the other counters.
		ctx := context.WithoutCancel(ctx)
		_, _ = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, key := range keys {
				if starts[i] >= 0 {
					uncountScript.Eval(ctx, p, []string{key}, starts[i])
				}
			}
			return nil
		})
	}
	return roundUp(wait), nil
}

func roundUp(ms int64) time.Duration {
	if ms <= 0 {
		return 0
	}
	return time.Duration((ms+999)/1000) * time.Second
}

// failScript counts a failure of client ARGV[1] on the account hash
// KEYS[1]; ARGV: memory, threshold, base, cap (ms), key TTL (ms). From the
// threshold on it locks that client for base*2^(failures-threshold),
// capped, and returns the lock (ms), else 0. Failures older than memory
// are forgotten.
var failScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = 0
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local c, _, last = string.match(v, '^(%d+):(%d+):(%d+)$')
  if c and now - tonumber(last) <= tonumber(ARGV[2]) then n = tonumber(c) end
end
n = n + 1
local after = tonumber(ARGV[3])
local lock = 0
if n >= after then
  lock = math.min(tonumber(ARGV[4]) * (2 ^ math.min(n - after, 30)), tonumber(ARGV[5]))
end
local untilMs = 0
if lock > 0 then untilMs = now + lock end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%d:%d', n, untilMs, now))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return math.floor(lock)`)

// RecordFailure counts a failed login on lock (a Pair, or an account:
// then the client is ""). It returns the lock duration when this failure
// locked it, else 0.
func (l *Limiter) RecordFailure(ctx context.Context, lock string) (time.Duration, error) {
	if l.lockAfter <= 0 {
		return 0, nil
	}
	account, client := splitPair(lock)
	ttl := max(l.memory, l.lockMax) + Keep
	ms, err := failScript.Run(ctx, l.rdb, []string{accountKey(account)}, client,
		l.memory.Milliseconds(), l.lockAfter, l.lockBase.Milliseconds(), l.lockMax.Milliseconds(), ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, err
	}
	return roundUp(ms), nil
}

// RecordSuccess forgets the failures of lock (a Pair or an account).
func (l *Limiter) RecordSuccess(ctx context.Context, lock string) error {
	if l.lockAfter <= 0 {
		return nil
	}
	account, client := splitPair(lock)
	return l.rdb.HDel(ctx, accountKey(account), client).Err()
}

// ClearAccount forgets every client's failures and locks on account (a
// completed password reset proves the owner is back).
func (l *Limiter) ClearAccount(ctx context.Context, account string) error {
	if err := l.rdb.Del(ctx, accountKey(account)).Err(); err != nil {
		return fmt.Errorf("clearing the lockout of an account: %w", err)
	}
	return nil
}
