package httpapi

import (
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// The access log: one JSON line per request ("http request"), with the
// method, route pattern (never the path or query: they may carry ids or
// tokens), status, duration, response bytes, the client IP as the rate
// limiter sees it, the request id and, with tracing on, the trace id.
// Tokens travel in headers, cookies and bodies, none of which is logged.
// GET /auth/session and /auth/check (and /auth/check/..., whatever the
// method), the hot path, are sampled (ACCESS_LOG_HOT_SAMPLE); their 5xx are
// always logged.

// accessLog logs the requests of one route; a nil *accessLog logs nothing.
type accessLog struct {
	s      *Server
	method string
	route  string
	sample float64 // share of non-5xx requests logged
}

func (s *Server) accessLogger(method, pattern string) *accessLog {
	o := s.cfg.Observability
	if !o.AccessLog || s.log == nil {
		return nil
	}
	a := &accessLog{s: s, method: method, route: pattern, sample: 1}
	if method == "GET" && (pattern == "/auth/session" || pattern == "/auth/check") || pattern == checkPrefixPattern {
		a.sample = o.AccessLogHotSample
	}
	return a
}

// requestID is the caller's X-Request-Id when it is a plausible id (so a
// proxy's id joins the lines up), else a new random one; it is echoed in
// the response. The id is a correlation id, not a secret: it comes from the
// runtime's per-thread generator (math/rand/v2), and the header's value
// slice lives in w, so a session check spends one allocation on it.
func (a *accessLog) requestID(w *statusWriter, r *http.Request) string {
	if a == nil {
		return ""
	}
	var id string
	if v := r.Header["X-Request-Id"]; len(v) > 0 && validRequestID(v[0]) {
		id = v[0]
	} else {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], mrand.Uint64())
		id = hex.EncodeToString(b[:])
	}
	w.requestID[0] = id
	w.Header()["X-Request-Id"] = w.requestID[:]
	return id
}

// validRequestID accepts 1 to 64 characters of [A-Za-z0-9._:-]: nothing
// that could forge a log line or smuggle a long secret into it.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func (a *accessLog) log(r *http.Request, status, bytes int, elapsed time.Duration, reqID string) {
	if a == nil || (status < 500 && a.sample < 1 && (a.sample == 0 || mrand.Float64() >= a.sample)) {
		return
	}
	method := a.method
	if method == "ANY" {
		method = standardMethod(r.Method)
	}
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		slog.String("method", method),
		slog.String("route", a.route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int("bytes", bytes),
		slog.String("client_ip", ClientIP(r, a.s.cfg.TrustedProxies, a.s.cfg.TrustedProxyHops)),
		slog.String("request_id", reqID),
	)
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	a.s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
}
