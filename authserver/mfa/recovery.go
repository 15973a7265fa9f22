package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// RecoveryCodes is how many codes a user gets at once.
const RecoveryCodes = 10

// recoveryLen is the length of a code without dashes: 16 base32 characters,
// 80 random bits. That is far beyond any offline search, so a fast hash
// (SHA-256 over the user id and the code) stores them safely, and checking
// one never takes an argon2 hashing slot.
const recoveryLen = 16

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewRecoveryCodes returns fresh codes shaped "xxxx-xxxx-xxxx-xxxx".
func NewRecoveryCodes() []string {
	out := make([]string, RecoveryCodes)
	for i := range out {
		var raw [recoveryLen * 5 / 8]byte
		if _, err := rand.Read(raw[:]); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		s := b32.EncodeToString(raw[:])
		out[i] = s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
	}
	return out
}

// NormalizeRecoveryCode accepts a code as shown, in any case, with or
// without dashes and spaces; ok is false for anything that cannot be one.
func NormalizeRecoveryCode(code string) (string, bool) {
	if len(code) > 64 {
		return "", false
	}
	var sb strings.Builder
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case c == '-' || c == ' ':
		case c >= 'A' && c <= 'Z':
			sb.WriteByte(c + 'a' - 'A')
		case c >= 'a' && c <= 'z' || c >= '2' && c <= '7':
			sb.WriteByte(c)
		default:
			return "", false
		}
	}
	if sb.Len() != recoveryLen {
		return "", false
	}
	return sb.String(), true
}

// HashRecoveryCode is what is stored of a normalised code of userID: the
// user id salts it, so one table scan cannot test a guess for every user.
func HashRecoveryCode(userID, normalized string) []byte {
	h := sha256.New()
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(normalized))
	return h.Sum(nil)
}
