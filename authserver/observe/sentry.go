package observe

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/getsentry/sentry-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/leanauth/authstack/authserver/config"
)

// Sentry returns a hub that sends to o.SentryDSN, or nil when error
// reporting is off. Flush it before the process ends.
func Sentry(o config.Observability, release string) (*sentry.Hub, error) {
	if o.SentryDSN == "" {
		return nil, nil
	}
	c, err := sentry.NewClient(sentry.ClientOptions{
		Dsn: o.SentryDSN, Environment: o.SentryEnvironment, Release: release,
		BeforeSend: Scrub, SendDefaultPII: false,
		// ContextifyFrames would send source lines around each frame; the
		// source may hold literals that are not the report's business.
		Integrations: func(in []sentry.Integration) []sentry.Integration {
			out := in[:0]
			for _, i := range in {
				if i.Name() != "ContextifyFrames" {
					out = append(out, i)
				}
			}
			return out
		},
	})
	if err != nil {
		// The SDK's message can quote the DSN, which holds the project key.
		return nil, fmt.Errorf("SENTRY_DSN: not a valid Sentry DSN")
	}
	return sentry.NewHub(c, sentry.NewScope()), nil
}

var emailRE = regexp.MustCompile(`[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+`)

func scrubString(s string) string { return emailRE.ReplaceAllString(s, "<email>") }

// Scrub is the last step before an event leaves: it drops the request
// (body, cookies, headers such as Authorization, query string), the user
// and the breadcrumbs, and masks anything shaped like an email address in
// the message, the exceptions and the contexts (the log record's attributes are
// the "log" context). The reports come from
// error-level log records (Reporting), which never hold secrets or tokens
// (the project's logging rule); Scrub is the second line.
func Scrub(e *sentry.Event, _ *sentry.EventHint) *sentry.Event {
	e.Request = nil
	e.User = sentry.User{}
	e.Breadcrumbs = nil
	e.Message = scrubString(e.Message)
	for i := range e.Exception {
		e.Exception[i].Type = scrubString(e.Exception[i].Type)
		e.Exception[i].Value = scrubString(e.Exception[i].Value)
	}
	for _, c := range e.Contexts {
		for k, v := range c {
			if s, ok := v.(string); ok {
				c[k] = scrubString(s)
			}
		}
	}
	return e
}

// Reporting wraps a log handler so that every error-level record is also
// sent to Sentry: the unexpected failures (a 5xx, a recovered panic, a
// background job that failed). Expected outcomes (a wrong password, any
// 4xx) are not logged at error level and so never reported. hub nil: h.
func Reporting(h slog.Handler, hub *sentry.Hub) slog.Handler {
	if hub == nil {
		return h
	}
	return &reporting{Handler: h, hub: hub}
}

type reporting struct {
	slog.Handler
	hub   *sentry.Hub
	attrs []slog.Attr // from WithAttrs
	group string      // prefix from WithGroup
}

func (h *reporting) WithAttrs(as []slog.Attr) slog.Handler {
	n := &reporting{Handler: h.Handler.WithAttrs(as), hub: h.hub, group: h.group}
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), prefixed(h.group, as)...)
	return n
}

func (h *reporting) WithGroup(name string) slog.Handler {
	return &reporting{Handler: h.Handler.WithGroup(name), hub: h.hub, attrs: h.attrs, group: h.group + name + "."}
}

func prefixed(group string, as []slog.Attr) []slog.Attr {
	if group == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: group + a.Key, Value: a.Value}
	}
	return out
}

func (h *reporting) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.report(ctx, r)
	}
	return h.Handler.Handle(ctx, r)
}

// report runs on the goroutine that logged: for a recovered panic that is
// still the panicking stack, so the stack trace shows where it happened.
func (h *reporting) report(ctx context.Context, r slog.Record) {
	e := sentry.NewEvent()
	e.Level = sentry.LevelError
	e.Message = r.Message
	e.Timestamp = r.Time
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now()
	}
	value := r.Message
	attrs := sentry.Context{}
	add := func(a slog.Attr) {
		v := a.Value.Resolve().String()
		attrs[a.Key] = v
		if a.Key == "error" || a.Key == "panic" {
			value = v
		}
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool {
		add(slog.Attr{Key: h.group + a.Key, Value: a.Value})
		return true
	})
	e.Contexts["log"] = attrs
	e.Exception = []sentry.Exception{{Type: r.Message, Value: value, Stacktrace: sentry.NewStacktrace()}}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		e.Tags = map[string]string{"trace_id": sc.TraceID().String()}
	}
	h.hub.CaptureEvent(e)
}

// SentryFromEnv is the error reporting of a one-shot subcommand (migrate,
// backup, restore): a hub from SENTRY_DSN (and SENTRY_ENVIRONMENT), or nil
// when unset. Flush it before the process exits (Flush).
func SentryFromEnv(get config.Getenv, read config.ReadFile, release string) (*sentry.Hub, error) {
	o, err := config.LoadObservability(get, read)
	if err != nil {
		return nil, err
	}
	return Sentry(o, release)
}

// Flush waits up to five seconds for hub's reports to be sent; nil: nothing.
func Flush(hub *sentry.Hub) {
	if hub != nil {
		hub.Flush(5 * time.Second)
	}
}
