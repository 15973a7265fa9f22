package mail

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/leanauth/authstack/authserver/store"
)

// Events counts email outcomes (email_events_total{kind}).
type Events interface {
	EmailEvent(kind string)
}

// WorkerOptions configure the outbox worker.
type WorkerOptions struct {
	Poll      time.Duration // how often to look for due messages without a wake-up
	RetryBase time.Duration // first retry delay, doubled per attempt
	RetryMax  time.Duration // cap of the retry delay
	MaxAge    time.Duration // give up on a message this old
	Lease     time.Duration // how long a claimed message is reserved; a send may take half of it
	Logger    *slog.Logger
	Events    Events
	Tracing   trace.TracerProvider // nil: no spans
}

// Worker sends outbox rows. Many workers (replicas) may run at once: a row
// is claimed with FOR UPDATE SKIP LOCKED under a lease with its own token,
// one message at a time, and sent within half its lease, so the lease
// never runs out while the message is being sent and no other worker can
// claim it meanwhile. Its outcome is written only while the token still
// holds the row.
type Worker struct {
	db     store.DBTX
	sender Sender
	o      WorkerOptions
	wake   chan struct{}
	tracer trace.Tracer
}

// NewWorker returns a worker over db (the pool).
func NewWorker(db store.DBTX, sender Sender, o WorkerOptions) *Worker {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 2 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 72 * time.Hour
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Tracing == nil {
		o.Tracing = tracenoop.NewTracerProvider()
	}
	return &Worker{db: db, sender: sender, o: o, wake: make(chan struct{}, 1),
		tracer: o.Tracing.Tracer("github.com/leanauth/authstack/authserver/mail")}
}

// Notify wakes the worker (a message was just queued).
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Worker) event(kind string) {
	if w.o.Events != nil {
		w.o.Events.EmailEvent(kind)
	}
}

// Run sends due messages until ctx ends. A message being sent when ctx
// ends is finished first (bounded by the SMTP timeout); no other is claimed.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.o.Poll)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			n, err := w.RunOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.o.Logger.Warn("mail worker: claiming outbox messages", "error", err.Error())
				}
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// RunOnce claims one due message, if any, and tries to send it. It
// returns how many it claimed (0 or 1).
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	msgs, err := store.ClaimOutbox(ctx, w.db, 1, w.o.Lease)
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		w.deliver(context.WithoutCancel(ctx), m)
	}
	return len(msgs), nil
}

func (w *Worker) deliver(ctx context.Context, m store.OutboxMessage) {
	// One trace per delivery attempt: the send and the outcome's queries.
	ctx, span := w.tracer.Start(ctx, "outbox send", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.Int64("outbox.id", m.ID), attribute.String("email.kind", m.Kind), attribute.Int("outbox.attempt", m.Attempts)))
	defer span.End()
	log := w.o.Logger.With("outbox_id", m.ID, "email_kind", m.Kind, "attempt", m.Attempts)
	if m.Expired {
		// Its link no longer works: sending it would only confuse.
		w.finish(ctx, log, m, "EXPIRED", "link expired before the email could be sent", store.MarkOutboxFailed)
		log.Warn("email given up: its link expired before it could be sent")
		return
	}
	sctx, cancel := context.WithTimeout(ctx, w.o.Lease/2)
	err := w.sender.Send(sctx, Message{ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML})
	cancel()
	if err == nil {
		w.finish(ctx, log, m, strings.ToUpper(m.Kind)+"_SENT", "", func(ctx context.Context, q store.DBTX, id int64, lease, _ string) error {
			return store.MarkOutboxSent(ctx, q, id, lease)
		})
		log.Info("email sent")
		return
	}
	msg := redactAddresses(err.Error())
	span.SetStatus(codes.Error, msg)
	var perm *PermanentError
	switch {
	case errors.As(err, &perm):
		w.finish(ctx, log, m, "REJECTED", msg, store.MarkOutboxFailed)
		log.Error("email rejected by the SMTP server, not retried", "error", msg)
	case !m.Expires.IsZero() && time.Now().After(m.Expires):
		w.finish(ctx, log, m, "EXPIRED", msg, store.MarkOutboxFailed)
		log.Warn("email given up: its link expired", "error", msg)
	case time.Since(m.Created) > w.o.MaxAge:
		w.finish(ctx, log, m, "SEND_FAILED", msg, store.MarkOutboxFailed)
		log.Error("email given up", "error", msg)
	default:
		delay := Backoff(m.Attempts, w.o.RetryBase, w.o.RetryMax)
		w.finish(ctx, log, m, "SEND_RETRY", msg, func(ctx context.Context, q store.DBTX, id int64, lease, lastErr string) error {
			return store.MarkOutboxRetry(ctx, q, id, lease, delay, lastErr)
		})
		log.Warn("email not sent, will retry", "error", msg, "retry_in", delay.String())
	}
}

// finish records the outcome of m under its lease (retrying a failed
// database write a few times: the lease keeps other workers off the row)
// and counts event.
func (w *Worker) finish(ctx context.Context, log *slog.Logger, m store.OutboxMessage, event, lastErr string,
	mark func(ctx context.Context, q store.DBTX, id int64, lease, lastErr string) error) {
	uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := mark(uctx, w.db, m.ID, m.Lease, lastErr)
	for i := 0; i < 5 && err != nil && !errors.Is(err, store.ErrLeaseLost); i++ {
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
		err = mark(uctx, w.db, m.ID, m.Lease, lastErr)
	}
	if err != nil {
		log.Error("mail worker: recording the outcome of a message", "outcome", event, "error", err.Error())
	}
	w.event(event)
}

// addrRE matches anything shaped like an email address.
var addrRE = regexp.MustCompile(`[^\s<>"'(),;:]+@[^\s<>"'(),;:]+`)

// redactAddresses removes email addresses from an SMTP error (a 5xx
// often quotes the recipient) before it is logged or stored.
func redactAddresses(s string) string { return addrRE.ReplaceAllString(s, "<address>") }

// Backoff is the delay before attempt+1: base*2^(attempt-1), capped, with
// up to 20% jitter so that replicas do not retry in lockstep.
func Backoff(attempt int, base, max time.Duration) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5 + 1))
	return d - jitter
}
