package password

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leanauth/authstack/authserver/config"
	"golang.org/x/text/unicode/norm"
)

// Passwords are hashed in NFKC: the same password typed as fullwidth or
// decomposed characters verifies.
func TestNormalizedPasswords(t *testing.T) {
	h := newHasher(t, small, pep(1))
	ctx := context.Background()
	enc, err := h.Hash(ctx, "ｃａｆｅ\u0301 au lait")
	if err != nil {
		t.Fatal(err)
	}
	for _, typed := range []string{"café au lait", "cafe\u0301 au lait", "ｃａｆé au lait"} {
		if res, err := h.Verify(ctx, typed, enc); err != nil || !res.OK || res.NeedsRehash {
			t.Errorf("Verify(%q) = %+v %v", typed, res, err)
		}
	}
}

// A hash made from the raw form (before normalisation existed) still
// verifies, asks for a rehash, and costs what the dummy costs for the same
// password (a second derivation depends on the password, not the account).
func TestRawFormFallback(t *testing.T) {
	h := newHasher(t, small, pep(1))
	ctx := context.Background()
	raw := "ｒａｗ ｆｏｒｍ"
	legacy := h.hash(nil, raw) // what the server stored before NFKC
	before := derived(h)
	res, err := h.Verify(ctx, raw, legacy)
	if err != nil || !res.OK || !res.NeedsRehash {
		t.Fatalf("legacy raw-form hash: %+v %v", res, err)
	}
	verify := derived(h) - before
	before = derived(h)
	if err := h.VerifyDummy(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if dummy := derived(h) - before; dummy != verify || verify != 2 {
		t.Fatalf("derivations: verify %d, dummy %d, want 2 and 2", verify, dummy)
	}
	if res, _ := h.Verify(ctx, "raw form", legacy); res.OK {
		t.Fatal("the normalised form matched a hash of the raw form")
	}
}

// Right after the argon2 parameters changed, verifying a hash with the old
// parameters, one with the current ones and the dummy (unknown address) do
// the same derivations, so a known account answers neither faster nor slower.
func TestOldParametersCostTheSame(t *testing.T) {
	cur := config.Argon2{MemoryKiB: 4096, Iterations: 2, Parallelism: 1}
	h := newHasher(t, cur, pep(1))
	oldH := newHasher(t, config.Argon2{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, pep(1))
	ctx := context.Background()
	old, _ := oldH.Hash(ctx, "an old password")
	current, _ := h.Hash(ctx, "a new password")
	h.RememberParams(old) // as the server does at start from the stored hashes
	var dOld, dCur, dDummy []time.Duration
	work := func(f func()) (time.Duration, int64) {
		n, start := derived(h), time.Now()
		f()
		return time.Since(start), derived(h) - n
	}
	for i := 0; i < 15; i++ {
		d1, n1 := work(func() {
			if res, err := h.Verify(ctx, "an old password", old); err != nil || !res.OK || !res.NeedsRehash {
				t.Fatalf("verify old: %+v %v", res, err)
			}
		})
		d2, n2 := work(func() { _, _ = h.Verify(ctx, "a new password", current) })
		d3, n3 := work(func() { _ = h.VerifyDummy(ctx, "an old password") })
		if n1 != 2 || n2 != 2 || n3 != 2 {
			t.Fatalf("derivations: old hash %d, current hash %d, dummy %d; want 2 each (one per parameter set)", n1, n2, n3)
		}
		dOld, dCur, dDummy = append(dOld, d1), append(dCur, d2), append(dDummy, d3)
	}
	t.Logf("median: old hash %s, current hash %s, dummy %s", med(dOld), med(dCur), med(dDummy))
}

func med(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// The login check refuses no password that was ever accepted: one chosen
// before normalisation, long enough only raw (a decomposed "passé12"), nor
// a long composed one typed decomposed; both still verify.
func TestLoginCheckKeepsEveryAcceptedPassword(t *testing.T) {
	h := newHasher(t, small, pep(1))
	ctx := context.Background()
	legacy := "passe\u030112" // 8 characters raw, 7 composed: valid before normalisation
	legacyHash := h.hash(nil, legacy)
	long := strings.Repeat("\u00e9", MaxLength) // valid now, composed
	longHash, err := h.Hash(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ typed, enc string }{
		{legacy, legacyHash},
		{norm.NFD.String(long), longHash}, // 256 characters raw
	} {
		if err := CheckLength(c.typed); err != nil {
			t.Errorf("CheckLength(%d characters) = %v: the owner's password is refused before it is verified", utf8.RuneCountInString(c.typed), err)
			continue
		}
		if res, err := h.Verify(ctx, c.typed, c.enc); err != nil || !res.OK {
			t.Errorf("Verify(%d characters) = %+v %v", utf8.RuneCountInString(c.typed), res, err)
		}
	}
	for pw, want := range map[string]error{
		"passé12":                  ErrTooShort, // 7 characters in both forms
		strings.Repeat("x", 129):   ErrTooLong,
		strings.Repeat("x", 16000): ErrTooLong,
		"tab\tpassword":            ErrInvalid,
	} {
		if err := CheckLength(pw); err != want {
			t.Errorf("CheckLength(%.20q) = %v, want %v", pw, err, want)
		}
	}
	if err := Validate(legacy); err != ErrTooShort {
		t.Errorf("Validate(decomposed passé12) = %v: a new password counts composed characters", err)
	}
}
