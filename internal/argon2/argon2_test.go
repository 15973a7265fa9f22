package argon2

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	xargon2 "golang.org/x/crypto/argon2"
)

// The same output as x/crypto's IDKey, with memory reused across calls of
// different sizes, inputs and lane counts (dirty memory must not matter).
func TestMatchesXCrypto(t *testing.T) {
	var mem Memory
	params := []struct {
		t, m uint32
		p    uint8
	}{{1, 64, 1}, {2, 256, 1}, {3, 128, 4}, {1, 8, 1}, {2, 1024, 2}, {1, 64, 1}, {2, 19456, 1}, {1, 777, 3}}
	for i, pr := range params {
		pw := make([]byte, i*7)
		salt := make([]byte, 16)
		_, _ = rand.Read(pw)
		_, _ = rand.Read(salt)
		want := xargon2.IDKey(pw, salt, pr.t, pr.m, pr.p, 32)
		got := IDKey(&mem, pw, salt, pr.t, pr.m, pr.p, 32)
		if !bytes.Equal(got, want) {
			t.Fatalf("params %+v: got %x want %x", pr, got, want)
		}
		if again := IDKey(&mem, pw, salt, pr.t, pr.m, pr.p, 32); !bytes.Equal(again, want) {
			t.Fatalf("params %+v: second run on dirty memory differs", pr)
		}
		if fresh := IDKey(nil, pw, salt, pr.t, pr.m, pr.p, 64); !bytes.Equal(fresh, xargon2.IDKey(pw, salt, pr.t, pr.m, pr.p, 64)) {
			t.Fatalf("params %+v: nil memory, 64-byte key differs", pr)
		}
	}
}

// RFC 9106 section 5.3 test vector for Argon2id (with secret and data, which
// IDKey does not take, so checked through deriveKey).
func TestRFC9106Vector(t *testing.T) {
	pw := bytes.Repeat([]byte{1}, 32)
	salt := bytes.Repeat([]byte{2}, 16)
	secret := bytes.Repeat([]byte{3}, 8)
	data := bytes.Repeat([]byte{4}, 12)
	want := []byte{
		0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53, 0xc9,
		0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01, 0xe6, 0x59,
	}
	var mem Memory
	for i := 0; i < 2; i++ {
		if got := deriveKey(&mem, argon2id, pw, salt, secret, data, 3, 32, 4, 32, nil); !bytes.Equal(got, want) {
			t.Fatalf("run %d: got %x want %x", i, got, want)
		}
	}
}

// IDKeyCPU derives the same key as IDKey and measures the CPU time of every
// lane: positive, and at most the wall time times the lanes (it counts no
// waiting, so on a loaded machine it is far less).
func TestIDKeyCPU(t *testing.T) {
	var mem Memory
	defer mem.Release()
	for _, p := range []uint8{1, 3} {
		pw, salt := []byte("correct horse"), bytes.Repeat([]byte{7}, 16)
		t0 := time.Now()
		key, cpu := IDKeyCPU(&mem, pw, salt, 2, 4096, p, 32)
		wall := time.Since(t0)
		if want := IDKey(nil, pw, salt, 2, 4096, p, 32); !bytes.Equal(key, want) {
			t.Fatalf("p=%d: key %x, IDKey %x", p, key, want)
		}
		if cpu <= 0 || cpu > time.Duration(p)*wall+time.Millisecond {
			t.Errorf("p=%d: CPU %s for a wall time of %s", p, cpu, wall)
		}
	}
}
