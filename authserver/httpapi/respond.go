package httpapi

// Response writing: every status line, header and body the API sends goes
// through this file.
//
// Why the JSON is built by hand: GET /auth/session and /auth/check are the
// hot path, held to at least 0.80 of the request rate of a bare Redis GET
// (docs/benchmarks.md), so the bodies of fixed shape (errors, login,
// session, health) are appended into one byte slice: no reflection, no
// intermediate map or struct, one allocation per response.
// appendJSONString escapes what encoding/json escapes in the strings these
// bodies carry (quotes, backslash, control characters and <, >, &); its
// input is valid UTF-8 (ids, normalised emails, fixed messages). Bodies
// that are rare or of variable shape (the session list, readiness) use
// encoding/json.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
)

// Header values shared by every response (set by map index: no
// canonicalisation or allocation per request).
var (
	noStore = []string{"no-store"}
	nosniff = []string{"nosniff"}
	jsonCT  = []string{"application/json"}
)

// fail writes err as a JSON error; unexpected errors become 500 and are logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *service.Error
	if errors.As(err, &se) {
		if se == service.ErrBusy { // no hashing slot in time
			w.Header()["Retry-After"] = s.busyRetryAfter()
			writeError(w, se.Status, se.Code, se.Message, 0)
			return
		}
		writeError(w, se.Status, se.Code, se.Message, se.RetryAfter)
		return
	}
	var de *DecodeError
	if errors.As(err, &de) {
		writeError(w, de.Status, de.Code, de.Message, 0)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads this.
		writeError(w, 499, "client_closed", "client closed the request", 0)
		return
	}
	s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	writeError(w, http.StatusInternalServerError, "internal", "internal error", 0)
}

func writeError(w http.ResponseWriter, status int, code, msg string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(retryAfter)))
	}
	b := appendError(make([]byte, 0, 64+len(code)+len(msg)), code, msg)
	w.Header()["Content-Type"] = jsonCT
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// retryAfterSeconds is d in whole seconds, rounded up (Retry-After).
func retryAfterSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// appendError appends the JSON error body.
func appendError(b []byte, code, msg string) []byte {
	b = append(b, `{"error":{"code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	return append(b, "}}\n"...)
}

func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	w.Header()["Content-Type"] = jsonCT
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string (s is valid UTF-8 here).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

func appendUser(b []byte, cur session.Info) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, cur.UserID)
	b = append(b, `,"email":`...)
	b = appendJSONString(b, cur.Email)
	b = append(b, `,"email_verified":`...)
	b = strconv.AppendBool(b, cur.EmailVerified)
	return append(b, '}')
}
