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
// its normalised form (Normalize).
func Validate(pw string) error {
	if err := CheckLength(pw); err != nil {
		return err
	}
	if _, ok := common[strings.ToLower(Normalize(pw))]; ok {
		return ErrCommon
	}
	return nil
}

// CheckLength applies the rules that every password given to the server
// meets, at login too: valid UTF-8 without control characters, MinLength to
// MaxLength characters once normalised. It is cheap: a request that fails
// it never takes a hashing slot.
func CheckLength(pw string) error {
	if !utf8.ValidString(pw) {
		return ErrInvalid
	}
	if utf8.RuneCountInString(pw) > MaxLength { // before normalising a huge string
		return ErrTooLong
	}
	for _, r := range pw {
		if r < 0x20 || r == 0x7f {
			return ErrInvalid
		}
	}
	n := utf8.RuneCountInString(Normalize(pw))
	if n < MinLength {
		return ErrTooShort
	}
	if n > MaxLength {
		return ErrTooLong
	}
	return nil
}
