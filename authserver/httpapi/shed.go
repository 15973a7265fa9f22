package httpapi

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/service"
)

// The answer to a request shed by hashing: service.ErrBusy, built once,
// with the Retry-After header values it can take.
var (
	shedBody    = appendError(nil, service.ErrBusy.Code, service.ErrBusy.Message)
	retryAfters = func() (v [password.MaxRetryAfter/time.Second + 1][]string) {
		for i := range v {
			v[i] = []string{strconv.Itoa(i)}
		}
		return v
	}()
	connClose = []string{"close"}
)

// busyRetryAfter is the Retry-After header value of a 503 busy: the
// expected wait for the requests already admitted, spread at random
// (password.Hasher.RetryAfter), so the clients shed at once come back over
// a few seconds instead of in one wave.
func (s *Server) busyRetryAfter() []string {
	return retryAfters[min(len(retryAfters)-1, retryAfterSeconds(s.svc.BusyRetryAfter()))]
}

// hashing admits a request to a route that hashes a password only when a
// hashing slot or a place in the queue waiting for one is free, and
// otherwise answers 503 + Retry-After at once, before the body is read or
// decoded and before Redis or PostgreSQL is touched. Under a login storm
// the CPU then goes to the hashes that will succeed, not to requests that
// would wait in vain; the wait for a slot stays bounded by time
// (AUTH_HASH_WAIT_TIMEOUT) and the queue by count (AUTH_HASH_QUEUE). It
// happens before anything about the account is known, so a shed request
// tells nothing about it and counts toward no limit or lockout.
func (s *Server) hashing(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.svc.AdmitHashing() {
			// Answer without waiting for the body: net/http reads what is
			// left of it before writing a response. What arrived with the
			// headers is in the connection's buffer and is skipped without
			// a system call; a body still to come fails at once on the
			// expired deadline. (EnableFullDuplex would avoid that, but
			// net/http then panics reading the next request over the
			// unread body: "invalid concurrent Body.Read call".)
			// The connection is closed after the answer either way: the
			// client is to come back after Retry-After, and an idle
			// connection kept for it holds a goroutine, its stack and
			// net/http's 8 KiB of buffers (in a 500-connection storm, most
			// connections wait so: docs/benchmarks.md). Its next login
			// may then also reach a less busy pod.
			_ = http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0))
			_, _ = io.Copy(io.Discard, r.Body)
			hdr := w.Header()
			hdr["Connection"] = connClose
			hdr["Retry-After"] = s.busyRetryAfter()
			hdr["Content-Type"] = jsonCT
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(shedBody)
			return
		}
		defer s.svc.DoneHashing()
		h(w, r)
	}
}

// Hashing is hashing for the hosted pages' forms (authserver/ui).
func (s *Server) Hashing(h http.HandlerFunc) http.HandlerFunc { return s.hashing(h) }
