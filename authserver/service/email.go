package service

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// NormalizeEmail trims an address, normalises it to Unicode NFKC and
// lower-cases it (so one mailbox is one account whatever the case or the
// Unicode composition it is typed in; the domain's IDNA mapping is not
// applied: its punycode form, or one with characters IDNA ignores such as
// a soft hyphen, is another account), and
// checks that it is a bare address (no display name) with a dotted domain,
// at most 254 bytes. Every flow looks accounts up by this form; migration
// 0002 brought older rows to it.
func NormalizeEmail(s string) (string, bool) {
	if !utf8.ValidString(s) || len(s) > 1024 {
		return "", false
	}
	s = norm.NFKC.String(strings.ToLower(norm.NFKC.String(strings.TrimSpace(s))))
	if s == "" || len(s) > 254 || strings.ContainsAny(s, "\r\n\t <>\"(),;:\\[]") {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at > 64 {
		return "", false
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", false
	}
	return s, true
}
