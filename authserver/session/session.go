// Package session issues and validates session tokens. PostgreSQL is the
// truth; Redis caches each session so that a validation is one Redis GET
// with no database round trip and no write. When Redis is down or has lost
// a session, validation falls back to PostgreSQL and re-caches.
//
// Redis may be a single node or a Redis Cluster (redis.UniversalClient):
// every Lua script and transaction touches one key only, so no operation
// spans hash slots. docs/data-tier.md lists the keys ("Redis Cluster");
// why each has the TTL it has: authserver/DESIGN.md, "Redis keys and memory".
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/store"
)

// ErrInvalid is returned for a missing, malformed, unknown, expired or revoked token.
var ErrInvalid = errors.New("invalid session")

const (
	tokenBytes = 32                   // 256-bit tokens
	tokenLen   = 43                   // base64url without padding
	keyPrefix  = "authstack:session:" // + hex(sha256(token)): the encoded Info, or tombstone
	activeKey  = "authstack:sessions" // sorted set: member hex hash, score expiry
	tombstone  = "revoked"            // a session key's value after a revocation
	// tombTTL: a tombstone is needed until every copy of its session
	// cached before the revocation has expired (maxCache), and until then
	// it must have more TTL left than any cached session (maxCache again),
	// so that Redis evicting by shortest TTL (volatile-ttl) drops cached
	// sessions first; see authserver/DESIGN.md, "Redis keys and memory".
	tombTTL = 2*maxCache + 5*time.Minute
	// activeTTL: the active set only feeds a metric; its short TTL,
	// renewed on every write, makes it the first key evicted.
	activeTTL = time.Minute
	// legacyTomb + hex hash is the tombstone key of authservers before the
	// tombstone moved into the session key: still set at revocation so that
	// such a pod, during a rolling upgrade, does not re-cache a revoked
	// session. Remove one release after.
	legacyTomb = "authstack:revoked:"
	maxCache   = time.Hour       // bound on how long Redis may answer alone
	redisPause = 1 * time.Second // skip Redis this long after a connection error
	// revOverlap: each revocation sync re-reads this much before the last
	// one, so a revocation whose transaction began earlier but committed
	// later (revoked_at is the transaction's start) is not missed.
	revOverlap = time.Minute
)

// A revocation must be kept in PostgreSQL at least as long as a cached copy
// of the session may live in Redis (compile-time check: negative overflows).
const _ = uint64(store.RevocationKeep - maxCache)

// Authentication levels: how a session last proved who it is
// (sessions.auth_method). /auth/check passes it upstream as X-Auth-Level.
const (
	LevelPassword = "password" // the password alone
	LevelMFA      = "mfa"      // the password and a second factor
	LevelPasskey  = "passkey"  // a passkey on its own (possession and user verification)
)

// Satisfies tells whether a session at level have meets a requirement of
// level want: "password" is met by any session, "mfa" by mfa and passkey.
// An unknown requirement is never met.
func Satisfies(have, want string) bool {
	switch want {
	case LevelPassword:
		return have == LevelPassword || have == LevelMFA || have == LevelPasskey
	case LevelMFA:
		return have == LevelMFA || have == LevelPasskey
	case LevelPasskey:
		return have == LevelPasskey
	}
	return false
}

// Info is what a valid session tells about itself and its user.
type Info struct {
	ID            string
	UserID        string
	Email         string
	EmailVerified bool
	CreatedAt     time.Time
	ExpiresAt     time.Time
	Level         string    // LevelPassword, LevelMFA or LevelPasskey
	AuthAt        time.Time // when it last authenticated (login or re-authentication)

	tokenHash [32]byte // to re-cache it after a re-authentication
}

// NewToken returns a fresh random token and its SHA-256.
func NewToken() (string, [32]byte) {
	var raw [tokenBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	return tok, sha256.Sum256([]byte(tok))
}

// WellFormed tells whether tok has the shape of a token of this package.
func WellFormed(tok string) bool {
	if len(tok) != tokenLen {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if !base64URL[tok[i]] {
			return false
		}
	}
	return true
}

// base64URL marks the bytes of the unpadded base64url alphabet (a table:
// every session check looks at each byte of its token twice).
var base64URL = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

// HashToken returns SHA-256 of a well-formed token; ok is false otherwise.
func HashToken(tok string) (h [32]byte, ok bool) {
	if !WellFormed(tok) {
		return h, false
	}
	// Copied into an array on the stack: []byte(tok) of 43 bytes would be an
	// allocation on every session check (the compiler's stack buffer for
	// such conversions holds 32).
	var b [tokenLen]byte
	copy(b[:], tok)
	return sha256.Sum256(b[:]), true
}

func cacheKey(h []byte) string {
	var buf [len(keyPrefix) + 64]byte
	copy(buf[:], keyPrefix)
	hex.Encode(buf[len(keyPrefix):], h)
	return string(buf[:])
}

// encode renders Info for Redis:
// "2|sid|uid|verified|created|expires|level|authat|email". Version 1 (no
// level, no auth time) is still read, as a password session authenticated
// when created: pods of the previous release write it during a rolling
// upgrade (and cannot read version 2, so they fall back to PostgreSQL).
func encode(i Info) string {
	var sb strings.Builder
	sb.Grow(140 + len(i.Email))
	sb.WriteString("2|")
	sb.WriteString(i.ID)
	sb.WriteByte('|')
	sb.WriteString(i.UserID)
	if i.EmailVerified {
		sb.WriteString("|1|")
	} else {
		sb.WriteString("|0|")
	}
	sb.WriteString(strconv.FormatInt(i.CreatedAt.Unix(), 10))
	sb.WriteByte('|')
	sb.WriteString(strconv.FormatInt(i.ExpiresAt.Unix(), 10))
	sb.WriteByte('|')
	sb.WriteString(i.Level)
	sb.WriteByte('|')
	sb.WriteString(strconv.FormatInt(i.AuthAt.Unix(), 10))
	sb.WriteByte('|')
	sb.WriteString(i.Email)
	return sb.String()
}

func decode(s string) (Info, bool) {
	var i Info
	var f [9]string
	fields := 6 // before the email
	if strings.HasPrefix(s, "2|") {
		fields = 8
	} else if !strings.HasPrefix(s, "1|") {
		return i, false
	}
	for n := 0; n < fields; n++ {
		j := strings.IndexByte(s, '|')
		if j < 0 {
			return i, false
		}
		f[n], s = s[:j], s[j+1:]
	}
	c, err1 := strconv.ParseInt(f[4], 10, 64)
	e, err2 := strconv.ParseInt(f[5], 10, 64)
	if err1 != nil || err2 != nil {
		return i, false
	}
	i.ID, i.UserID, i.EmailVerified, i.Email = f[1], f[2], f[3] == "1", s
	i.CreatedAt, i.ExpiresAt = time.Unix(c, 0).UTC(), time.Unix(e, 0).UTC()
	i.Level, i.AuthAt = LevelPassword, i.CreatedAt
	if fields == 8 {
		a, err := strconv.ParseInt(f[7], 10, 64)
		if err != nil || !Satisfies(f[6], LevelPassword) {
			return i, false
		}
		i.Level, i.AuthAt = f[6], time.Unix(a, 0).UTC()
	}
	return i, true
}

// Manager creates, validates and revokes sessions.
type Manager struct {
	db         store.DBTX
	rdb        redis.UniversalClient
	ttl        time.Duration
	idle       time.Duration // 0: no idle timeout
	touchEvery time.Duration
	log        *slog.Logger

	redisDownUntil atomic.Int64 // unix nanos
	touched        sync.Map     // session id -> unix nanos of the last queued touch
	touchCh        chan string

	mu         sync.Mutex
	pendingDel map[string]struct{} // cache keys whose DEL failed, retried in Run

	active atomic.Int64

	// Revocations recorded in PostgreSQL (session_revocations), loaded by
	// every replica: a cached session found here is refused whatever Redis
	// holds. dials counts new Redis connections; a Redis restarted from an
	// older snapshot can only be reached through a new connection, so cached
	// entries are trusted only after a sync that started after the last dial.
	revMu       sync.RWMutex
	revoked     map[[32]byte]int64 // token hash -> keep until (unix nanos)
	syncMu      sync.Mutex         // one sync at a time
	revSince    time.Time          // database time of the last sync
	dials       atomic.Uint64
	syncedDials atomic.Uint64 // dials seen when the last successful sync began, +1
	syncRetryAt atomic.Int64  // unix nanos: no inline sync before, after one failed
}

// Options configure a Manager.
type Options struct {
	TTL        time.Duration
	Idle       time.Duration // a session unused this long ends (0: never)
	TouchEvery time.Duration // at most one last_seen_at update per session per interval
	Logger     *slog.Logger
}

// NewManager returns a Manager over db (the pool) and rdb (a single-node
// or a cluster client).
func NewManager(db store.DBTX, rdb redis.UniversalClient, o Options) *Manager {
	if o.TouchEvery <= 0 {
		o.TouchEvery = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &Manager{
		db: db, rdb: rdb, ttl: o.TTL, idle: o.Idle, touchEvery: o.TouchEvery, log: o.Logger,
		touchCh:    make(chan string, 4096),
		pendingDel: map[string]struct{}{},
		revoked:    map[[32]byte]int64{},
	}
	w := dialWatch{m}
	if c, ok := rdb.(*redis.ClusterClient); ok {
		c.OnNewNode(func(n *redis.Client) { n.AddHook(w) })
	} else {
		rdb.AddHook(w)
	}
	return m
}

// dialWatch counts the Redis connections a Manager's client opens.
type dialWatch struct{ m *Manager }

func (w dialWatch) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err == nil {
			w.m.dials.Add(1)
		}
		return c, err
	}
}

func (dialWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (dialWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TTL is the lifetime of new sessions.
func (m *Manager) TTL() time.Duration { return m.ttl }

// Create stores a new session for user, authenticated now at level, inside
// q (a transaction, typically) and returns its token. Call Cache after the
// transaction commits.
func (m *Manager) Create(ctx context.Context, q store.DBTX, u store.User, ip, ua, level string) (string, Info, error) {
	return m.CreateWith(u, ip, ua, level, func(s *store.Session) error { return store.InsertSession(ctx, q, s) })
}

// CreateWith is Create with the row written by insert, which fills in the
// session's id and times (and may correct its user's email): a statement
// that writes other rows with it, such as store.OpenPasswordSession.
func (m *Manager) CreateWith(u store.User, ip, ua, level string, insert func(*store.Session) error) (string, Info, error) {
	tok, h := NewToken()
	s := store.Session{TokenHash: h[:], UserID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified,
		ExpiresAt: time.Now().Add(m.ttl).Truncate(time.Second), IP: ip, UserAgent: ua, AuthMethod: level}
	if err := insert(&s); err != nil {
		return "", Info{}, err
	}
	m.touched.Store(s.ID, time.Now().UnixNano())
	return tok, infoOf(s, h), nil
}

func infoOf(s store.Session, h [32]byte) Info {
	return Info{ID: s.ID, UserID: s.UserID, Email: s.Email, EmailVerified: s.EmailVerified,
		CreatedAt: s.CreatedAt.UTC().Truncate(time.Second), ExpiresAt: s.ExpiresAt.UTC().Truncate(time.Second),
		Level: s.AuthMethod, AuthAt: s.AuthAt.UTC().Truncate(time.Second), tokenHash: h}
}

// Reauthenticated records in PostgreSQL (inside q) that the session cur
// authenticated again now at level, and returns it as it now is. Call
// Recache after the transaction commits. ErrInvalid: the session is gone.
func (m *Manager) Reauthenticated(ctx context.Context, q store.DBTX, cur Info, level string) (Info, error) {
	s, err := store.ReauthenticateSession(ctx, q, cur.UserID, cur.ID, level)
	if errors.Is(err, store.ErrNotFound) {
		return Info{}, ErrInvalid
	}
	if err != nil {
		return Info{}, err
	}
	s.Email, s.EmailVerified = cur.Email, cur.EmailVerified
	return infoOf(s, cur.tokenHash), nil
}

// Recache replaces the cached copy of a session after a change of its
// level or authentication time (best effort: while the old copy stays, a
// step-up check sees the older time and refuses, never the other way).
func (m *Manager) Recache(ctx context.Context, info Info) {
	if info.tokenHash == ([32]byte{}) {
		return
	}
	m.cache(ctx, info.tokenHash[:], info, time.Now())
}

// Cache puts a new session into Redis (best effort).
func (m *Manager) Cache(ctx context.Context, tok string, info Info) {
	h, ok := HashToken(tok)
	if !ok {
		return
	}
	m.cache(ctx, h[:], info, time.Now())
}

// IdleWindow is how long after its recorded last_seen_at a session stays
// valid (0: forever). last_seen_at is written at most once per touchEvery
// per session (batched), so it may lag the last use by up to touchEvery:
// the window adds that lag, so a session used within the idle timeout is
// never ended, and an unused one ends at most touchEvery late.
func (m *Manager) IdleWindow() time.Duration {
	if m.idle <= 0 {
		return 0
	}
	return m.idle + m.touchEvery
}

func (m *Manager) redisUsable() bool {
	return time.Now().UnixNano() >= m.redisDownUntil.Load()
}

func (m *Manager) redisFailed(err error) {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return
	}
	m.redisDownUntil.Store(time.Now().Add(redisPause).UnixNano())
	m.log.Warn("redis unavailable, using PostgreSQL for sessions", "error", err.Error())
}

// cache puts a session last seen (in PostgreSQL) at lastSeen into Redis. The
// entry expires no later than the session's idle deadline from lastSeen:
// Redis answers alone only while PostgreSQL's last_seen_at cannot yet have
// gone idle; then a validation reads the row, which decides.
func (m *Manager) cache(ctx context.Context, h []byte, info Info, lastSeen time.Time) {
	if !m.redisUsable() {
		return
	}
	ttl := min(time.Until(info.ExpiresAt), maxCache)
	if w := m.IdleWindow(); w > 0 {
		ttl = min(ttl, time.Until(lastSeen.Add(w)))
	}
	if ttl <= 0 {
		return
	}
	key := cacheKey(h)
	cached, err := cacheScript.Run(ctx, m.rdb, []string{key}, encode(info), ttl.Milliseconds(), tombstone).Int()
	if err == nil && cached == 1 {
		// The active set is a separate key (another hash slot in a cluster):
		// more commands, not part of the script. It only feeds a metric.
		_, err = m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ZAdd(ctx, activeKey, redis.Z{Score: float64(info.ExpiresAt.Unix()), Member: key[len(keyPrefix):]})
			p.PExpire(ctx, activeKey, activeTTL)
			return nil
		})
	}
	m.redisFailed(err)
}

// cacheScript caches a session unless it was revoked in the last minute
// (its key holds the tombstone): a validation that read the row just before
// a logout must not re-cache it. One key, so it runs on a cluster too.
var cacheScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// Validate returns the session of tok. Cached sessions cost one Redis GET.
func (m *Manager) Validate(ctx context.Context, tok string) (Info, error) {
	h, ok := HashToken(tok)
	if !ok {
		return Info{}, ErrInvalid
	}
	return m.validateHash(ctx, h[:])
}

func (m *Manager) validateHash(ctx context.Context, h []byte) (Info, error) {
	now := time.Now()
	if now.UnixNano() >= m.redisDownUntil.Load() { // redisUsable, with the clock read once
		v, err := m.rdb.Get(ctx, cacheKey(h)).Result()
		if err == nil {
			if info, ok := decode(v); ok {
				if !now.Before(info.ExpiresAt) || m.isRevoked(ctx, h) {
					return Info{}, ErrInvalid
				}
				info.tokenHash = [32]byte(h)
				m.touch(info.ID, now)
				return info, nil
			}
		} else {
			m.redisFailed(err)
		}
	}
	// A copy for the queries, so that h itself does not escape: the caller's
	// array then stays on the stack on the hot path (a Redis hit).
	hc := [32]byte(h)
	s, err := store.SessionByTokenHash(ctx, m.db, hc[:], m.IdleWindow())
	if errors.Is(err, store.ErrNotFound) {
		return Info{}, ErrInvalid
	}
	if err != nil {
		return Info{}, err
	}
	info := infoOf(s, hc)
	m.cache(ctx, hc[:], info, s.LastSeenAt)
	m.touch(info.ID, now)
	return info, nil
}

// touch queues a last_seen_at update at most once per touchEvery per session.
func (m *Manager) touch(id string, now time.Time) {
	if v, ok := m.touched.Load(id); ok && now.UnixNano()-v.(int64) < int64(m.touchEvery) {
		return
	}
	m.touched.Store(id, now.UnixNano())
	select {
	case m.touchCh <- id:
	default: // the flusher is behind; this touch is skipped, not the request
	}
}

// isRevoked says whether the session of token hash h was revoked, by the
// revocations loaded from PostgreSQL. When a Redis connection was opened
// since the last sync (Redis may have restarted from an older snapshot), it
// syncs first; if PostgreSQL cannot be read, it trusts the cache (no
// revocation can commit while PostgreSQL is down) and tries again inline
// only a second later, so that an outage adds no query to every request.
func (m *Manager) isRevoked(ctx context.Context, h []byte) bool {
	if !m.current() && time.Now().UnixNano() >= m.syncRetryAt.Load() {
		if err := m.sync(ctx, false); err != nil {
			m.syncRetryAt.Store(time.Now().Add(redisPause).UnixNano())
			m.log.Warn("loading session revocations", "error", err.Error())
		}
	}
	m.revMu.RLock()
	_, ok := m.revoked[[32]byte(h)]
	m.revMu.RUnlock()
	return ok
}

// current: the last sync began after the last new Redis connection.
func (m *Manager) current() bool { return m.syncedDials.Load() == m.dials.Load()+1 }

// SyncRevocations loads the revocations recorded since the last sync (all
// kept ones on the first) and forgets those no cache entry can outlive.
// Run calls it every second.
func (m *Manager) SyncRevocations(ctx context.Context) error { return m.sync(ctx, true) }

func (m *Manager) sync(ctx context.Context, always bool) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if !always && m.current() {
		return nil // another request synced meanwhile
	}
	dials := m.dials.Load()
	since := m.revSince
	if !since.IsZero() {
		since = since.Add(-revOverlap)
	}
	now, revs, err := store.RevocationsSince(ctx, m.db, since)
	if err != nil {
		return err
	}
	m.remember(revs...)
	m.revMu.Lock()
	for h, keep := range m.revoked {
		if keep < now.UnixNano() {
			delete(m.revoked, h)
		}
	}
	m.revMu.Unlock()
	m.revSince = now
	m.syncedDials.Store(dials + 1)
	return nil
}

func (m *Manager) remember(revs ...store.Revocation) {
	m.revMu.Lock()
	for _, r := range revs {
		if len(r.TokenHash) == 32 {
			m.revoked[[32]byte(r.TokenHash)] = r.KeepUntil.UnixNano()
		}
	}
	m.revMu.Unlock()
}

// Forget removes sessions from Redis after they were deleted (and their
// revocation recorded) in PostgreSQL. This replica refuses them at once;
// the others when they next sync. A failed cache write is retried in the
// background, but nothing depends on it any more.
func (m *Manager) Forget(ctx context.Context, hashes ...[]byte) {
	if len(hashes) == 0 {
		return
	}
	keep := time.Now().Add(store.RevocationKeep)
	revs := make([]store.Revocation, len(hashes))
	for i, h := range hashes {
		revs[i] = store.Revocation{TokenHash: h, KeepUntil: keep}
	}
	m.remember(revs...)
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = cacheKey(h)
	}
	if err := m.del(ctx, keys); err != nil {
		m.mu.Lock()
		for _, k := range keys {
			if len(m.pendingDel) < 100000 {
				m.pendingDel[k] = struct{}{}
			}
		}
		m.mu.Unlock()
	}
}

// del replaces each cached session by the tombstone (for a minute, so a
// racing validation cannot re-cache it) and drops it from the active set.
// Every command touches one key: a pipeline, not a transaction, so that a
// cluster client can send each command to its slot's node. A partial
// failure returns an error and the whole set is retried (all idempotent).
func (m *Manager) del(ctx context.Context, keys []string) error {
	members := make([]any, len(keys))
	for i, k := range keys {
		members[i] = k[len(keyPrefix):]
	}
	_, err := m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, k, tombstone, tombTTL)
			p.Set(ctx, legacyTomb+k[len(keyPrefix):], "1", tombTTL)
		}
		p.ZRem(ctx, activeKey, members...)
		return nil
	})
	if err != nil {
		m.redisFailed(err)
	}
	return err
}

// Active is the last measured number of unexpired sessions in Redis.
func (m *Manager) Active() int64 { return m.active.Load() }

// Run does the background work until ctx ends: batched last_seen_at
// updates, revocations loaded every second, retried cache deletions and
// the active-session count.
func (m *Manager) Run(ctx context.Context) {
	flush := time.NewTicker(2 * time.Second)
	slow := time.NewTicker(15 * time.Second)
	defer flush.Stop()
	defer slow.Stop()
	var batch []string
	write := func() {
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := store.TouchSessions(wctx, m.db, batch); err != nil {
			m.log.Warn("updating session last_seen_at", "error", err.Error(), "sessions", len(batch))
		}
		cancel()
		batch = batch[:0]
	}
	syncRevs := func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := m.SyncRevocations(sctx); err != nil && ctx.Err() == nil {
			m.log.Warn("loading session revocations", "error", err.Error())
		}
		cancel()
	}
	revs := time.NewTicker(time.Second)
	defer revs.Stop()
	m.countActive(ctx)
	for {
		select {
		case <-ctx.Done():
			write()
			return
		case <-revs.C:
			syncRevs()
		case id := <-m.touchCh:
			batch = append(batch, id)
			if len(batch) >= 500 {
				write()
			}
		case <-flush.C:
			write()
			m.retryDeletes(ctx)
		case <-slow.C:
			m.prune(time.Now())
			m.countActive(ctx)
		}
	}
}

// Flush writes the queued last_seen_at updates now (for tests and shutdown).
func (m *Manager) Flush(ctx context.Context) error {
	var ids []string
	for {
		select {
		case id := <-m.touchCh:
			ids = append(ids, id)
			continue
		default:
		}
		break
	}
	if len(ids) == 0 {
		return nil
	}
	return store.TouchSessions(ctx, m.db, ids)
}

func (m *Manager) prune(now time.Time) {
	m.touched.Range(func(k, v any) bool {
		if now.UnixNano()-v.(int64) > 2*int64(m.touchEvery) {
			m.touched.Delete(k)
		}
		return true
	})
}

func (m *Manager) retryDeletes(ctx context.Context) {
	m.mu.Lock()
	if len(m.pendingDel) == 0 {
		m.mu.Unlock()
		return
	}
	keys := make([]string, 0, len(m.pendingDel))
	for k := range m.pendingDel {
		keys = append(keys, k)
		if len(keys) == 1000 {
			break
		}
	}
	m.mu.Unlock()
	if err := m.del(ctx, keys); err == nil {
		m.mu.Lock()
		for _, k := range keys {
			delete(m.pendingDel, k)
		}
		m.mu.Unlock()
	}
}

func (m *Manager) countActive(ctx context.Context) {
	if !m.redisUsable() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	now := strconv.FormatInt(time.Now().Unix(), 10)
	var card *redis.IntCmd
	_, err := m.rdb.TxPipelined(cctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(cctx, activeKey, "-inf", "("+now)
		card = p.ZCard(cctx, activeKey)
		p.PExpire(cctx, activeKey, activeTTL)
		return nil
	})
	if err != nil {
		m.redisFailed(err)
		return
	}
	m.active.Store(card.Val())
}
