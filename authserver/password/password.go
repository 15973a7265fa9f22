// Package password hashes and verifies passwords: argon2id over
// HMAC-SHA256(pepper, password), stored as PHC strings that name the pepper,
// with a bounded number of hashes running at once.
package password

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/text/unicode/norm"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/internal/argon2"
)

const (
	saltLen = 16
	keyLen  = 32
)

// ErrBusy is returned when no hashing slot became free within the wait time.
var ErrBusy = errors.New("password hashing is at capacity")

// ErrMalformedHash is returned for a stored hash that is not a PHC argon2id string.
var ErrMalformedHash = errors.New("malformed password hash")

// ErrUnknownPepper is returned for a hash made with a pepper that is no longer configured.
var ErrUnknownPepper = errors.New("password hash uses a pepper that is not configured")

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	params  config.Argon2
	peppers []config.Pepper
	slots   chan struct{}
	admit   chan struct{}       // places of the requests that may hash (slots + queue); nil: unbounded
	mems    chan *argon2.Memory // one reusable block memory per slot
	lastUse atomic.Int64        // unix nanos of the last release
	wait    time.Duration
	dummy   string
	derived atomic.Int64 // argon2 derivations run
	cpuNs   atomic.Int64 // their CPU time (argon2.IDKeyCPU), when measureCPU
	// measureCPU: the derivations' threads are at most the Ps, so keeping
	// each on its thread to read its CPU clock costs no thread switches
	// (when they are more, it costs 11 to 16 % of their throughput).
	measureCPU bool
	wallNs     atomic.Int64 // their wall time
	recent     atomic.Int64 // moving average of the time a request holds a slot, ns (RetryAfter)

	mu  sync.Mutex
	old map[config.Argon2]time.Time // parameter sets other than params, by when a stored hash last had them

	busyMu    sync.Mutex
	busy      int        // hashes running (guarded by busyMu, so onHashing's calls alternate)
	onHashing func(bool) // OnHashing's
}

// New returns a Hasher using peppers[0] for new hashes, running at most
// concurrency hashes at once and waiting at most wait for a slot. Admit
// lets at most concurrency + queue requests in at once (queue < 0: any
// number).
func New(params config.Argon2, peppers []config.Pepper, concurrency, queue int, wait time.Duration) (*Hasher, error) {
	if len(peppers) == 0 {
		return nil, errors.New("creating password hasher: no pepper configured")
	}
	if params.MemoryKiB < 8*uint32(params.Parallelism) || params.Iterations < 1 || params.Parallelism < 1 {
		return nil, fmt.Errorf("creating password hasher: invalid argon2 parameters m=%d t=%d p=%d", params.MemoryKiB, params.Iterations, params.Parallelism)
	}
	if concurrency < 1 {
		concurrency = 1
	}
	h := &Hasher{params: params, peppers: peppers, slots: make(chan struct{}, concurrency),
		mems: make(chan *argon2.Memory, concurrency), wait: wait, old: map[config.Argon2]time.Time{},
		measureCPU: concurrency*int(params.Parallelism) <= runtime.GOMAXPROCS(0)}
	for i := 0; i < concurrency; i++ {
		h.mems <- &argon2.Memory{} // grown on first use
	}
	if queue >= 0 {
		h.admit = make(chan struct{}, concurrency+queue)
	}
	// A real hash of a random password, verified against for unknown users so
	// that their requests cost exactly what a known user's does.
	var pw [24]byte
	_, _ = rand.Read(pw[:])
	h.dummy = h.hash(nil, base64.RawStdEncoding.EncodeToString(pw[:]))
	return h, nil
}

// Params returns the parameters used for new hashes.
func (h *Hasher) Params() config.Argon2 { return h.params }

// acquire takes a hashing slot and its block memory. When the request is
// traced, the wait for the slot and then the hash (until release) are
// spans; the tracer is the caller's span's, a no-op one when untraced.
func (h *Hasher) acquire(ctx context.Context) (slot, error) {
	tracer := trace.SpanFromContext(ctx).TracerProvider().Tracer("github.com/leanauth/authstack/authserver/password")
	_, wait := tracer.Start(ctx, "password.slot_wait")
	mem, err := h.takeSlot(ctx)
	if err != nil {
		wait.SetStatus(codes.Error, err.Error())
		wait.End()
		return slot{}, err
	}
	wait.End()
	_, hash := tracer.Start(ctx, "password.argon2id", trace.WithAttributes(
		attribute.Int("argon2.memory_kib", int(h.params.MemoryKiB)), attribute.Int("argon2.iterations", int(h.params.Iterations))))
	return slot{mem: mem, span: hash, taken: time.Now()}, nil
}

// slot is a hashing slot held: its block memory, the span of the hash and
// when it was taken.
type slot struct {
	mem   *argon2.Memory
	span  trace.Span
	taken time.Time
}

// OnHashing makes the Hasher call f(true) when a hash starts, or a request
// is admitted to hash (Admit), while none runs or holds a place, and
// f(false) when the last one ends; the calls alternate, and a hash starts
// only after its f(true) returned. Admission counts so that f(true) runs
// as a login storm's first request arrives, before its burst of
// connections, not only once its first hash starts. Call it before the
// first hash.
func (h *Hasher) OnHashing(f func(hashing bool)) { h.onHashing = f }

// running counts a hash or an admitted request in (+1) or out (-1) and
// calls onHashing on the transitions.
func (h *Hasher) running(d int) {
	if h.onHashing == nil {
		return
	}
	h.busyMu.Lock()
	defer h.busyMu.Unlock()
	h.busy += d
	if h.busy == 1 && d > 0 || h.busy == 0 {
		h.onHashing(h.busy > 0)
	}
}

func (h *Hasher) takeSlot(ctx context.Context) (*argon2.Memory, error) {
	select {
	case h.slots <- struct{}{}:
		h.running(+1)
		return <-h.mems, nil
	default:
	}
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		h.running(+1)
		return <-h.mems, nil
	case <-t.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Admit reserves, without waiting, a place for a request that will hash:
// a slot or a place in the queue of requests waiting for one. It returns
// false when every place is taken: the caller sheds the request before
// doing any work for it. After true, call Leave when the request is done.
// The queue is so bounded by count; the wait for a slot stays bounded by
// time.
func (h *Hasher) Admit() bool {
	if h.admit == nil {
		return true
	}
	select {
	case h.admit <- struct{}{}:
		h.running(+1)
		return true
	default:
		return false
	}
}

// MaxRetryAfter bounds RetryAfter.
const MaxRetryAfter = time.Minute

// RetryAfter is when a request refused by Admit should come back: the
// time the requests holding a place take to hash (their count × the recent
// time a request holds a slot ÷ the slots), at least a second and at most
// half MaxRetryAfter, in whole seconds, and spread at random up to twice
// that, so that the clients shed together do not come back together.
func (h *Hasher) RetryAfter() time.Duration {
	drain := time.Duration(h.Admitted()) * time.Duration(h.recent.Load()) / time.Duration(cap(h.slots))
	// Capped before the spread, so that a long drain still spreads.
	base := min(MaxRetryAfter/2, max(time.Second, drain.Round(time.Second)))
	return base + time.Duration(mrand.Int64N(int64(base/time.Second)+1))*time.Second
}

// Leave gives back the place Admit reserved.
func (h *Hasher) Leave() {
	if h.admit != nil {
		h.running(-1)
		<-h.admit
	}
}

// Admitted reports how many requests hold a place (hashing, waiting for a
// slot, or still before their hash).
func (h *Hasher) Admitted() int { return len(h.admit) }

func (h *Hasher) release(sl slot) {
	sl.span.End()
	now := time.Now()
	// An exponential moving average of how long a request holds a slot
	// (one derivation, two for a password checked in both forms, or more
	// while parameters migrate) over about the last 8; a lost update between
	// two releases at once changes nothing that matters.
	held := int64(now.Sub(sl.taken))
	if old := h.recent.Load(); old == 0 {
		h.recent.Store(held)
	} else {
		h.recent.Store(old + (held-old)/8)
	}
	h.lastUse.Store(now.UnixNano())
	h.mems <- sl.mem
	h.running(-1)
	<-h.slots
}

// ReleaseIdleMemory drops the block memory of the slots when no hash ran for
// idle, so an idle process gives the argon2 memory back (it is allocated
// again by the next hash). It returns how many slots were trimmed.
func (h *Hasher) ReleaseIdleMemory(idle time.Duration) int {
	if time.Since(time.Unix(0, h.lastUse.Load())) < idle {
		return 0
	}
	n := 0
	for i := 0; i < cap(h.mems); i++ {
		select {
		case mem := <-h.mems:
			if mem.Size() > 0 {
				mem.Release()
				n++
			}
			h.mems <- mem
		default:
			return n // the others are in use
		}
	}
	return n
}

// InFlight reports how many hashes are running now.
func (h *Hasher) InFlight() int { return len(h.slots) }

// Work reports how many argon2 computations this Hasher has run, and their
// summed wall and CPU time. CPU time is what the hashes cost; wall time
// above it is time their threads waited for a CPU (other processes, or a
// container's CPU limit throttling it). CPU time stays 0 when more
// derivations can run at once than there are Ps (GOMAXPROCS): measuring it
// would cost their throughput.
func (h *Hasher) Work() (n int64, wall, cpu time.Duration) {
	return h.derived.Load(), time.Duration(h.wallNs.Load()), time.Duration(h.cpuNs.Load())
}

// Normalize is the form of a password that is hashed: Unicode NFKC, so the
// same password typed on different keyboards or systems is the same string.
func Normalize(pw string) string { return norm.NFKC.String(pw) }

// Hash returns the PHC string of password (normalised) with the current
// pepper and parameters.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	sl, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer h.release(sl)
	return h.hash(sl.mem, Normalize(password)), nil
}

func (h *Hasher) hash(mem *argon2.Memory, password string) string {
	var salt [saltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	p := h.peppers[0]
	key := h.derive(mem, p.Key, password, salt[:], h.params.Iterations, h.params.MemoryKiB, h.params.Parallelism, keyLen)
	return encode(h.params, p.ID, salt[:], key)
}

func (h *Hasher) derive(mem *argon2.Memory, pepper []byte, password string, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	t0 := time.Now()
	mac := hmac.New(sha256.New, pepper)
	mac.Write([]byte(password))
	var key []byte
	var cpu time.Duration
	if h.measureCPU {
		key, cpu = argon2.IDKeyCPU(mem, mac.Sum(nil), salt, t, m, p, n)
	} else {
		key = argon2.IDKey(mem, mac.Sum(nil), salt, t, m, p, n)
	}
	h.wallNs.Add(int64(time.Since(t0)))
	h.cpuNs.Add(int64(cpu))
	h.derived.Add(1)
	return key
}

// Result is the outcome of a verification.
type Result struct {
	OK bool
	// NeedsRehash is true when the password matched but the hash uses an
	// older pepper or other parameters than the current ones, or was made
	// from the password before normalisation.
	NeedsRehash bool
}

// Verify checks password against the PHC string encoded: its normalised
// form, and, for hashes stored before passwords were normalised, its raw
// form when that differs. A malformed hash or one made with an unknown
// pepper is an error (and not a match).
//
// Its work depends on neither the stored hash nor the outcome, only on the
// password: it runs the same derivations as VerifyDummy (see pad).
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (Result, error) {
	sl, err := h.acquire(ctx)
	if err != nil {
		return Result{}, err
	}
	defer h.release(sl)
	mem := sl.mem
	ph, err := decode(encoded)
	var pepper []byte
	if err == nil {
		for _, p := range h.peppers {
			if p.ID == ph.keyID {
				pepper = p.Key
				break
			}
		}
		if pepper == nil {
			err = ErrUnknownPepper
		}
	}
	if err != nil {
		h.verifyDummy(mem, password)
		return Result{}, err
	}
	var res Result
	for i, form := range forms(password) {
		got := h.derive(mem, pepper, form, ph.salt, ph.params.Iterations, ph.params.MemoryKiB, ph.params.Parallelism, uint32(len(ph.key)))
		if subtle.ConstantTimeCompare(got, ph.key) == 1 && !res.OK {
			res = Result{OK: true, NeedsRehash: i > 0 || ph.keyID != h.peppers[0].ID || ph.params != h.params || len(ph.salt) != saltLen || len(ph.key) != keyLen}
		}
	}
	h.pad(mem, ph.params, len(forms(password)))
	return res, nil
}

// forms are the strings a password is checked as: normalised, then raw if
// different (hashes made before normalisation).
func forms(pw string) []string {
	if n := Normalize(pw); n != pw {
		return []string{n, pw}
	}
	return []string{pw}
}

// VerifyDummy costs the same as Verify and never matches: use it when the
// account does not exist.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	sl, err := h.acquire(ctx)
	if err != nil {
		return err
	}
	defer h.release(sl)
	h.verifyDummy(sl.mem, password)
	return nil
}

func (h *Hasher) verifyDummy(mem *argon2.Memory, password string) {
	ph, err := decode(h.dummy)
	if err != nil {
		panic("dummy hash does not decode: " + err.Error())
	}
	fs := forms(password)
	for _, form := range fs {
		got := h.derive(mem, h.peppers[0].Key, form, ph.salt, ph.params.Iterations, ph.params.MemoryKiB, ph.params.Parallelism, uint32(len(ph.key)))
		subtle.ConstantTimeCompare(got, ph.key)
	}
	h.pad(mem, ph.params, len(fs))
}

// oldMemory is how long a parameter set other than the current one is
// remembered after a stored hash last had it: such hashes are rehashed at
// their owner's next login, so old sets fade out.
const oldMemory = 24 * time.Hour

// pad completes a verification that ran n derivations with params: it runs
// n derivations with each other parameter set in use (the current one and
// those of stored hashes verified in the last oldMemory), on a throwaway
// input. So every verification, of a current hash, of an old one or of the
// dummy, does the same work: right after the operator changed the argon2
// parameters, accounts still holding hashes with the old ones answer
// neither faster nor slower than unknown addresses. In steady state (every
// hash current) it does nothing; after a change, verifications cost the sum
// of the sets until the old hashes are rehashed or not seen for oldMemory.
func (h *Hasher) pad(mem *argon2.Memory, params config.Argon2, n int) {
	now := time.Now()
	sets := []config.Argon2{h.params}
	h.mu.Lock()
	if params != h.params {
		h.old[params] = now
	}
	for p, at := range h.old {
		if now.Sub(at) > oldMemory {
			delete(h.old, p)
		} else {
			sets = append(sets, p)
		}
	}
	h.mu.Unlock()
	var salt [saltLen]byte
	for _, p := range sets {
		if p == params {
			continue
		}
		for range n {
			h.derive(mem, h.peppers[0].Key, "", salt[:], p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
		}
	}
}

// RememberParams records parameter sets that stored hashes have (read from
// the database at start), so that pad covers them from the first request.
func (h *Hasher) RememberParams(phcs ...string) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range phcs {
		if ph, err := decode(s); err == nil && ph.params != h.params {
			h.old[ph.params] = now
		}
	}
}

type phc struct {
	params config.Argon2
	keyID  string
	salt   []byte
	key    []byte
}

var b64 = base64.RawStdEncoding

func encode(p config.Argon2, keyID string, salt, key []byte) string {
	var sb strings.Builder
	sb.Grow(100)
	sb.WriteString("$argon2id$v=19$m=")
	sb.WriteString(strconv.FormatUint(uint64(p.MemoryKiB), 10))
	sb.WriteString(",t=")
	sb.WriteString(strconv.FormatUint(uint64(p.Iterations), 10))
	sb.WriteString(",p=")
	sb.WriteString(strconv.FormatUint(uint64(p.Parallelism), 10))
	sb.WriteString(",keyid=")
	sb.WriteString(keyID)
	sb.WriteByte('$')
	sb.WriteString(b64.EncodeToString(salt))
	sb.WriteByte('$')
	sb.WriteString(b64.EncodeToString(key))
	return sb.String()
}

func decode(s string) (phc, error) {
	var out phc
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", params, salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" {
		return out, ErrMalformedHash
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return out, ErrMalformedHash
		}
		seen[k] = true
		switch k {
		case "m", "t", "p":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 {
				return out, ErrMalformedHash
			}
			switch k {
			case "m":
				out.params.MemoryKiB = uint32(n)
			case "t":
				out.params.Iterations = uint32(n)
			case "p":
				if n > 255 {
					return out, ErrMalformedHash
				}
				out.params.Parallelism = uint8(n)
			}
		case "keyid":
			out.keyID = v
		default:
			return out, ErrMalformedHash
		}
	}
	if !seen["m"] || !seen["t"] || !seen["p"] || out.keyID == "" {
		return out, ErrMalformedHash
	}
	// Refuse absurd costs from a tampered row rather than allocating them.
	if out.params.MemoryKiB > 4*1024*1024 || out.params.Iterations > 100 || out.params.MemoryKiB < 8*uint32(out.params.Parallelism) {
		return out, ErrMalformedHash
	}
	var err error
	if out.salt, err = b64.DecodeString(parts[4]); err != nil || len(out.salt) < 8 {
		return out, ErrMalformedHash
	}
	if out.key, err = b64.DecodeString(parts[5]); err != nil || len(out.key) < 16 || len(out.key) > 64 {
		return out, ErrMalformedHash
	}
	return out, nil
}
