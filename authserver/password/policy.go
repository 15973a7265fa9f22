package password

import (
	_ "embed"
	"errors"
	"strings"
	"unicode/utf8"
)

// MinLength and MaxLength bound a password's length in characters.
const (
	MinLength = 8
	MaxLength = 128
)

// Policy errors, safe to show to users.
var (
	ErrTooShort = errors.New("password must be at least 8 characters")
	ErrTooLong  = errors.New("password must be at most 128 characters")
	ErrCommon   = errors.New("password is too common")
	ErrInvalid  = errors.New("password must be valid UTF-8 without control characters")
)

//go:embed common-passwords.txt
var commonList string

var common = func() map[string]struct{} {
	m := make(map[string]struct{}, 256)
	for _, line := range strings.Split(commonList, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[strings.ToLower(line)] = struct{}{}
	}
	return m
}()

// Validate applies the password rules to a new password (OWASP/NIST style:
// length only, no composition rules, a blocklist of common passwords), on
// its normalised form (Normalize): MinLength to MaxLength characters.
func Validate(pw string) error {
	if err := checkChars(pw); err != nil {
		return err
	}
	n := utf8.RuneCountInString(Normalize(pw))
	if n < MinLength {
		return ErrTooShort
	}
	if n > MaxLength {
		return ErrTooLong
	}
	if _, ok := common[strings.ToLower(Normalize(pw))]; ok {
		return ErrCommon
	}
	return nil
}

// CheckLength applies, at login, the rules that every password the server
// ever accepted meets, so that a request that fails it never takes a
// hashing slot: valid UTF-8 without control characters, and MinLength to
// MaxLength characters in the raw or the normalised form. Either form, not
// the normalised one only: passwords chosen before normalisation were
// counted raw (a decomposed "passé12" has 8 characters raw, 7 composed; its
// hash of the raw form still verifies), and a password typed decomposed is
// longer raw than the composed form it was chosen in.
func CheckLength(pw string) error {
	if err := checkChars(pw); err != nil {
		return err
	}
	raw, n := utf8.RuneCountInString(pw), utf8.RuneCountInString(Normalize(pw))
	if max(raw, n) < MinLength {
		return ErrTooShort
	}
	if min(raw, n) > MaxLength {
		return ErrTooLong
	}
	return nil
}

// maxRaw bounds the raw length of any password before it is normalised: a
// composed MaxLength-character password typed decomposed is at most a few
// times longer.
const maxRaw = 4 * MaxLength

// checkChars refuses invalid UTF-8, control characters and a raw form too
// long to be any valid password, before anything costlier.
func checkChars(pw string) error {
	if !utf8.ValidString(pw) {
		return ErrInvalid
	}
	if utf8.RuneCountInString(pw) > maxRaw {
		return ErrTooLong
	}
	for _, r := range pw {
		if r < 0x20 || r == 0x7f {
			return ErrInvalid
		}
	}
	return nil
}
