package mfa

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A code is accepted for the current step and one on either side, and only
// for a step later than the last one accepted (replay refused).
func TestMatchSkewAndReplay(t *testing.T) {
	k, err := NewKey("AuthStack", "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_015, 0)
	cur := Step(now)
	for _, d := range []int64{-1, 0, 1} {
		code, _ := Code(k.Secret, time.Unix((cur+d)*Period, 0))
		step, ok, err := Match(k.Secret, code, now, 0)
		if err != nil || !ok || step != cur+d {
			t.Fatalf("step %+d: ok=%v step=%d err=%v", d, ok, step, err)
		}
		if _, ok, _ := Match(k.Secret, code, now, cur+d); ok {
			t.Fatalf("step %+d accepted again after it was used", d)
		}
	}
	for _, d := range []int64{-3, -2, 2, 3} {
		code, _ := Code(k.Secret, time.Unix((cur+d)*Period, 0))
		if _, ok, _ := Match(k.Secret, code, now, 0); ok {
			t.Fatalf("code of step %+d accepted", d)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "12345a", "１２３４５６"} {
		if _, ok, _ := Match(k.Secret, bad, now, 0); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
	if !strings.HasPrefix(k.URI, "otpauth://totp/AuthStack:a@example.com?") || !strings.Contains(k.URI, "secret="+k.Secret) {
		t.Fatalf("uri %q", k.URI)
	}
	if !strings.HasPrefix(k.QRPNG, "data:image/png;base64,iVBORw0KGgo") {
		t.Fatalf("qr %.40q", k.QRPNG)
	}
}

// Secrets decrypt only for their user and with a configured pepper; the
// ciphertext never holds the secret in clear; an old pepper still opens.
func TestKeyring(t *testing.T) {
	p1, p2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	old, err := NewKeyring([]string{"p1"}, [][]byte{p1})
	if err != nil {
		t.Fatal(err)
	}
	enc, kid := old.Seal("user-a", "JBSWY3DPEHPK3PXP")
	if kid != "p1" || bytes.Contains(enc, []byte("JBSWY3DPEHPK3PXP")) {
		t.Fatalf("kid %q enc %x", kid, enc)
	}
	if _, err := old.Open(kid, "user-b", enc); err == nil {
		t.Fatal("a secret opened for another user")
	}
	rotated, _ := NewKeyring([]string{"p2", "p1"}, [][]byte{p2, p1})
	if s, err := rotated.Open(kid, "user-a", enc); err != nil || s != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("old pepper: %q %v", s, err)
	}
	if _, kid2 := rotated.Seal("user-a", "x"); kid2 != "p2" {
		t.Fatalf("sealed with %q", kid2)
	}
	dropped, _ := NewKeyring([]string{"p2"}, [][]byte{p2})
	if _, err := dropped.Open(kid, "user-a", enc); err != ErrUnknownKey {
		t.Fatalf("dropped pepper: %v", err)
	}
	if _, err := old.Open("p1", "user-a", enc[:len(enc)-1]); err == nil {
		t.Fatal("a truncated ciphertext opened")
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes := NewRecoveryCodes()
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 19 || c[4] != '-' || seen[c] {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
		n, ok := NormalizeRecoveryCode(" " + strings.ToUpper(c) + " ")
		if !ok || n != strings.ReplaceAll(c, "-", "") {
			t.Fatalf("normalise %q: %q %v", c, n, ok)
		}
	}
	if len(codes) != RecoveryCodes {
		t.Fatalf("%d codes", len(codes))
	}
	for _, bad := range []string{"", "abcd-efgh", "abcd-efgh-ijkl-mno1", "abcd-efgh-ijkl-mnop-q", strings.Repeat("a", 100)} {
		if _, ok := NormalizeRecoveryCode(bad); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
	if bytes.Equal(HashRecoveryCode("u1", "x"), HashRecoveryCode("u2", "x")) {
		t.Fatal("the hash does not depend on the user")
	}
}

// BenchmarkVerifyCPU: the CPU part of a TOTP check (decrypt the secret,
// compute the three candidate codes, compare): no hashing slot, no I/O.
func BenchmarkVerifyCPU(b *testing.B) {
	k, _ := NewKey("AuthStack", "a@example.com")
	ring, _ := NewKeyring([]string{"p"}, [][]byte{bytes.Repeat([]byte{7}, 32)})
	enc, kid := ring.Seal("user", k.Secret)
	now := time.Now()
	code, _ := Code(k.Secret, now)
	b.ReportAllocs()
	for b.Loop() {
		s, err := ring.Open(kid, "user", enc)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok, _ := Match(s, code, now, 0); !ok {
			b.Fatal("no match")
		}
	}
}
