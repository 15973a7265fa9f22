// Package mfa holds the pure parts of second factors: TOTP keys and codes
// (RFC 6238, github.com/pquerna/otp), the encryption of TOTP secrets at rest
// and recovery codes. No I/O: the service stores what these return.
package mfa

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: the ones every authenticator app supports (RFC 6238
// defaults). A code is accepted for the current step and one on either
// side (clock drift), and only for a step later than the last one accepted.
const (
	Period = 30
	Digits = otp.DigitsSix
	Skew   = 1
)

var opts = totp.ValidateOpts{Period: Period, Digits: Digits, Algorithm: otp.AlgorithmSHA1}

// Key is a new TOTP secret for an authenticator.
type Key struct {
	Secret string // base32, no padding: what a person types in
	URI    string // otpauth://totp/...
	QRPNG  string // the URI as a QR code, a data:image/png;base64 URI
}

// NewKey returns a new 160-bit TOTP secret for account at issuer.
func NewKey(issuer, account string) (Key, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: Period, Digits: Digits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Key{}, fmt.Errorf("generating TOTP key: %w", err)
	}
	img, err := k.Image(256, 256)
	if err != nil {
		return Key{}, fmt.Errorf("drawing TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Key{}, fmt.Errorf("encoding TOTP QR code: %w", err)
	}
	return Key{Secret: k.Secret(), URI: k.URL(), QRPNG: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// Step is the RFC 6238 time step of t.
func Step(t time.Time) int64 { return t.Unix() / Period }

// WellFormedCode tells whether code looks like a TOTP code (six ASCII digits).
func WellFormedCode(code string) bool {
	if len(code) != int(Digits) {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Match returns the time step within Skew of now whose code is code and
// which is later than after (the last step accepted), or ok=false. Every
// candidate step is computed and compared in constant time.
func Match(secret, code string, now time.Time, after int64) (step int64, ok bool, err error) {
	if !WellFormedCode(code) {
		return 0, false, nil
	}
	cur := Step(now)
	for s := cur - Skew; s <= cur+Skew; s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*Period, 0), opts)
		if err != nil {
			return 0, false, fmt.Errorf("computing TOTP code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && s > after && !ok {
			step, ok = s, true
		}
	}
	return step, ok, nil
}

// Code returns the code of secret at t (tests and tools).
func Code(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, opts)
}
