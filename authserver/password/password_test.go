package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/config"
)

var small = config.Argon2{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

func pep(b byte) config.Pepper {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return config.Pepper{ID: config.PepperID(k), Key: k}
}

func newHasher(t *testing.T, p config.Argon2, peppers ...config.Pepper) *Hasher {
	t.Helper()
	h, err := New(p, peppers, 2, -1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashVerifyRoundTrip(t *testing.T) {
	h := newHasher(t, small, pep(1))
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1,keyid="+pep(1).ID+"$") {
		t.Fatalf("unexpected PHC string %q", enc)
	}
	res, err := h.Verify(ctx, "correct horse battery", enc)
	if err != nil || !res.OK || res.NeedsRehash {
		t.Fatalf("verify good password: %+v %v", res, err)
	}
	res, err = h.Verify(ctx, "correct horse batterz", enc)
	if err != nil || res.OK {
		t.Fatalf("verify wrong password: %+v %v", res, err)
	}
	enc2, _ := h.Hash(ctx, "correct horse battery")
	if enc2 == enc {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestPepperMatters(t *testing.T) {
	ctx := context.Background()
	a := newHasher(t, small, pep(1))
	enc, _ := a.Hash(ctx, "some password here")
	// Same pepper id but a different key must not verify (tampered config).
	forged := config.Pepper{ID: pep(1).ID, Key: pep(2).Key}
	b := newHasher(t, small, forged)
	res, err := b.Verify(ctx, "some password here", enc)
	if err != nil || res.OK {
		t.Fatalf("verified with the wrong pepper key: %+v %v", res, err)
	}
	// Unknown pepper id: an error, never a match.
	c := newHasher(t, small, pep(3))
	res, err = c.Verify(ctx, "some password here", enc)
	if !errors.Is(err, ErrUnknownPepper) || res.OK {
		t.Fatalf("want ErrUnknownPepper, got %+v %v", res, err)
	}
}

func TestRehashOnPepperRotationAndParams(t *testing.T) {
	ctx := context.Background()
	old := newHasher(t, small, pep(1))
	enc, _ := old.Hash(ctx, "rotate me please")

	rotated := newHasher(t, small, pep(2), pep(1))
	res, err := rotated.Verify(ctx, "rotate me please", enc)
	if err != nil || !res.OK || !res.NeedsRehash {
		t.Fatalf("old pepper: want OK and NeedsRehash, got %+v %v", res, err)
	}
	enc2, _ := rotated.Hash(ctx, "rotate me please")
	if !strings.Contains(enc2, "keyid="+pep(2).ID+"$") {
		t.Fatalf("new hash does not use the newest pepper: %q", enc2)
	}
	if res, _ := rotated.Verify(ctx, "rotate me please", enc2); !res.OK || res.NeedsRehash {
		t.Fatalf("fresh hash: %+v", res)
	}

	stronger := newHasher(t, config.Argon2{MemoryKiB: 128, Iterations: 2, Parallelism: 1}, pep(1))
	res, err = stronger.Verify(ctx, "rotate me please", enc)
	if err != nil || !res.OK || !res.NeedsRehash {
		t.Fatalf("old params: want OK and NeedsRehash, got %+v %v", res, err)
	}
}

func TestDefaultParameters(t *testing.T) {
	// The production defaults (OWASP: m=19 MiB, t=2, p=1), tested once.
	cfg, err := config.Load(func(k string) (string, bool) {
		env := map[string]string{
			"DATABASE_URL": "postgres://u:p@h/db", "REDIS_URL": "redis://h:6379",
			"AUTH_PEPPER": strings.Repeat("ab", 32), "SMTP_HOST": "smtp", "MAIL_FROM": "a@b.c",
			"FRONTEND_URL": "https://app.example.com",
		}
		v, ok := env[k]
		return v, ok
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Argon2 != (config.Argon2{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}) {
		t.Fatalf("defaults changed: %+v", cfg.Argon2)
	}
	h := newHasher(t, cfg.Argon2, cfg.Peppers...)
	start := time.Now()
	enc, err := h.Hash(context.Background(), "default parameters")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one default hash took %s", time.Since(start))
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1,keyid=") {
		t.Fatalf("unexpected PHC %q", enc)
	}
	if res, err := h.Verify(context.Background(), "default parameters", enc); err != nil || !res.OK || res.NeedsRehash {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestMalformedHashes(t *testing.T) {
	h := newHasher(t, small, pep(1))
	good, _ := h.Hash(context.Background(), "whatever password")
	bad := []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1,keyid=x$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64", "m=99999999", 1),
		strings.Replace(good, "t=1", "t=0", 1),
		strings.Replace(good, ",keyid="+pep(1).ID, "", 1),
		strings.Replace(good, "m=64", "m=64,m=64", 1),
		good + "$extra",
		good[:len(good)-30],
		strings.Replace(good, "p=1", "p=1,z=3", 1),
	}
	for _, b := range bad {
		res, err := h.Verify(context.Background(), "whatever password", b)
		if res.OK || err == nil {
			t.Errorf("malformed %q: got %+v, %v", b, res, err)
		}
	}
}

func TestDummyNeverMatches(t *testing.T) {
	h := newHasher(t, small, pep(1))
	if err := h.VerifyDummy(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	p := config.Argon2{MemoryKiB: 4096, Iterations: 2, Parallelism: 1}
	h, err := New(p, []config.Pepper{pep(1)}, 2, -1, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var maxSeen, busy atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int32(h.InFlight()); n > maxSeen.Load() {
				maxSeen.Store(n)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Hash(context.Background(), "bounded concurrency"); errors.Is(err, ErrBusy) {
				busy.Add(1)
			} else if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if maxSeen.Load() > 2 {
		t.Fatalf("saw %d hashes in flight, limit 2", maxSeen.Load())
	}
	t.Logf("%d of 24 concurrent hashes got ErrBusy", busy.Load())
	// With both slots taken a hash gives up after the wait, and a cancelled
	// context at once. (Whether some of the 24 above wait longer than 20 ms
	// depends on how fast the machine hashes 4 MiB.)
	h.slots <- struct{}{}
	h.slots <- struct{}{}
	if _, err := h.Hash(context.Background(), "x"); !errors.Is(err, ErrBusy) {
		t.Fatalf("both slots taken: want ErrBusy, got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "x"); !errors.Is(err, context.Canceled) && !errors.Is(err, ErrBusy) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]error{
		"short":                  ErrTooShort,
		"1234567":                ErrTooShort,
		"password":               ErrCommon,
		"PassWord123":            ErrCommon,
		"qwertyuiop":             ErrCommon,
		strings.Repeat("x", 129): ErrTooLong,
		strings.Repeat("é", 128): nil,
		"ünïcödé pass":           nil,
		"tab\tinside pw":         ErrInvalid,
		"bad utf8 \xff\xfe here": ErrInvalid,
		"a fine passphrase":      nil,
		"精神一到何事か成らざらん":           nil,
	}
	for pw, want := range cases {
		if got := Validate(pw); !errors.Is(got, want) {
			t.Errorf("Validate(%q) = %v, want %v", pw, got, want)
		}
	}
}

func BenchmarkDefaultHash(b *testing.B) {
	h, _ := New(config.Argon2{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}, []config.Pepper{pep(1)}, 1, -1, time.Minute)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = h.Hash(context.Background(), "benchmark password")
	}
}

// BenchmarkDefaultHashAllSlots hashes on every CPU at once, as a login flood does: its
// ns/op (wall time ÷ hashes) is the real ceiling of login throughput, lower than
// CPU count ÷ one lone hash because parallel argon2 hashes share caches and memory bandwidth.
func BenchmarkDefaultHashAllSlots(b *testing.B) {
	n := runtime.GOMAXPROCS(0)
	h, _ := New(config.Argon2{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}, []config.Pepper{pep(1)}, n, -1, time.Minute)
	b.ReportAllocs()
	b.SetParallelism(1)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = h.Hash(context.Background(), "benchmark password")
		}
	})
}

// Hashing reuses its block memory: ten hashes of 4 MiB allocate far less
// than one block array.
func TestHashReusesMemory(t *testing.T) {
	h, err := New(config.Argon2{MemoryKiB: 4096, Iterations: 1, Parallelism: 1}, []config.Pepper{pep(1)}, 1, -1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	enc, _ := h.Hash(ctx, "warm up the slot memory")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 5; i++ {
		_, _ = h.Hash(ctx, "no new block memory")
		_, _ = h.Verify(ctx, "no new block memory", enc)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("10 hashes allocated %d bytes; block memory is not reused", n)
	}
}

func TestReleaseIdleMemory(t *testing.T) {
	h := newHasher(t, config.Argon2{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, pep(1))
	if _, err := h.Hash(context.Background(), "allocate slot memory"); err != nil {
		t.Fatal(err)
	}
	if n := h.ReleaseIdleMemory(time.Hour); n != 0 {
		t.Fatalf("released %d slots while recently used", n)
	}
	time.Sleep(20 * time.Millisecond)
	if n := h.ReleaseIdleMemory(10 * time.Millisecond); n != 1 {
		t.Fatalf("released %d slots, want the 1 that was used", n)
	}
	enc, err := h.Hash(context.Background(), "works again")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := h.Verify(context.Background(), "works again", enc); err != nil || !res.OK {
		t.Fatalf("after release: %+v %v", res, err)
	}
}

// Admit lets in at most the slots plus the queue, without waiting, and a
// place is free again after Leave; a negative queue admits everyone.
func TestAdmitBoundsSlotsAndQueue(t *testing.T) {
	h, err := New(config.Argon2{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, []config.Pepper{pep(1)}, 2, 3, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if !h.Admit() {
			t.Fatalf("request %d of 2 slots + 3 queue places refused", i+1)
		}
	}
	if h.Admit() {
		t.Fatal("a sixth request admitted with 2 slots and 3 queue places")
	}
	if h.Admitted() != 5 {
		t.Fatalf("Admitted() = %d", h.Admitted())
	}
	h.Leave()
	if !h.Admit() {
		t.Fatal("no place after Leave")
	}
	unbounded, err := New(config.Argon2{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, []config.Pepper{pep(1)}, 1, -1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if !unbounded.Admit() {
			t.Fatal("a negative queue refused a request")
		}
	}
}

// OnHashing is told when hashes start and when the last one ends: the calls
// alternate, start with true and end with false, whichever of Hash, Verify
// and VerifyDummy hashes.
func TestOnHashingAlternates(t *testing.T) {
	h := newHasher(t, config.Argon2{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, pep(1))
	var mu sync.Mutex
	var calls []bool
	h.OnHashing(func(hashing bool) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, hashing)
	})
	stored, err := h.Hash(context.Background(), "first")
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 {
		t.Fatalf("one hash: calls %v, want [true false]", calls)
	}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch i % 3 {
			case 0:
				_, err = h.Verify(context.Background(), "first", stored)
			case 1:
				err = h.VerifyDummy(context.Background(), "nobody")
			default:
				_, err = h.Hash(context.Background(), "another")
			}
			if err != nil && !errors.Is(err, ErrBusy) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(calls) < 4 || len(calls)%2 != 0 {
		t.Fatalf("calls %v: want pairs of true, false (at least two: the first hash, then the concurrent ones)", calls)
	}
	for i, c := range calls {
		if c != (i%2 == 0) {
			t.Fatalf("calls %v do not alternate true, false at %d", calls, i)
		}
	}
}

// Work counts every derivation (a hash, a verification) with its wall and
// CPU time; the CPU time is positive and never more than the wall time at
// one lane (waiting for a CPU is not counted).
func TestWorkCountsDerivations(t *testing.T) {
	h := newHasher(t, config.Argon2{MemoryKiB: 4096, Iterations: 2, Parallelism: 1}, pep(1))
	n0, wall0, cpu0 := h.Work()
	phc, err := h.Hash(context.Background(), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Verify(context.Background(), "correct horse battery", phc); err != nil {
		t.Fatal(err)
	}
	n, wall, cpu := h.Work()
	if n-n0 != 2 {
		t.Errorf("%d derivations counted, want 2", n-n0)
	}
	if c, w := cpu-cpu0, wall-wall0; c <= 0 || c > w+time.Millisecond {
		t.Errorf("CPU %s for a wall time of %s", c, w)
	}
}

// RetryAfter is the requests holding a place × the recent time of one hash
// ÷ the slots, at least a second, in whole seconds, spread over [b, 2b] and
// never more than MaxRetryAfter.
func TestRetryAfter(t *testing.T) {
	h, err := New(config.Argon2{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, []config.Pepper{pep(1)}, 2, 30, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	spread := func() map[time.Duration]bool {
		seen := map[time.Duration]bool{}
		for i := 0; i < 400; i++ {
			seen[h.RetryAfter()] = true
		}
		return seen
	}
	check := func(name string, want ...time.Duration) {
		t.Helper()
		got := spread()
		if len(got) != len(want) {
			t.Errorf("%s: RetryAfter took %v, want each of %v", name, got, want)
		}
		for _, w := range want {
			if !got[w] {
				t.Errorf("%s: RetryAfter took %v, want each of %v", name, got, want)
			}
		}
	}
	s := time.Second
	check("idle", s, 2*s) // at least a second
	for i := 0; i < 20; i++ {
		h.Admit()
	}
	h.recent.Store(int64(300 * time.Millisecond)) // 20 × 0.3 s ÷ 2 slots = 3 s
	check("20 admitted", 3*s, 4*s, 5*s, 6*s)
	h.recent.Store(int64(10 * time.Second)) // 100 s: capped before the spread
	var capped []time.Duration
	for d := MaxRetryAfter / 2; d <= MaxRetryAfter; d += s {
		capped = append(capped, d)
	}
	check("capped", capped...)
}

// RetryAfter's drain is the time a request holds a slot, not one
// derivation's: a password checked in both forms (not NFKC-normal) runs two.
func TestRetryAfterCountsTheWholeHold(t *testing.T) {
	h, err := New(config.Argon2{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, []config.Pepper{pep(1)}, 1, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const pw = "ﬁne password" // NFKC: "fine password"
	enc, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	h.recent.Store(0)
	_, wall0, _ := h.Work()
	n0 := derived(h)
	if _, err := h.Verify(context.Background(), pw, enc); err != nil {
		t.Fatal(err)
	}
	_, wall1, _ := h.Work()
	if d := derived(h) - n0; d < 2 {
		t.Fatalf("Verify ran %d derivations, want 2 or more", d)
	}
	if held, derivations := time.Duration(h.recent.Load()), wall1-wall0; held < derivations {
		t.Errorf("recent hold %v < the %v its derivations took", held, derivations)
	}
}

// Admission counts as hashing for OnHashing: f(true) comes with the first
// admitted request (before its hash), f(false) only when it has left.
func TestOnHashingFromAdmission(t *testing.T) {
	h, err := New(config.Argon2{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, []config.Pepper{pep(1)}, 1, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var calls []bool
	h.OnHashing(func(hashing bool) { calls = append(calls, hashing) })
	if !h.Admit() || fmt.Sprint(calls) != "[true]" {
		t.Fatalf("admitted: calls %v, want [true]", calls)
	}
	if _, err := h.Hash(context.Background(), "a password"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(calls) != "[true]" {
		t.Fatalf("hashed while admitted: calls %v, want [true]", calls)
	}
	h.Leave()
	if fmt.Sprint(calls) != "[true false]" {
		t.Fatalf("left: calls %v, want [true false]", calls)
	}
}

// derived is the count of argon2 computations h has run.
func derived(h *Hasher) int64 {
	n, _, _ := h.Work()
	return n
}
