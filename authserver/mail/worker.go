package mail

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

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
	Lease     time.Duration // how long a claimed message is reserved
	Batch     int
	Logger    *slog.Logger
	Events    Events
}

// Worker sends outbox rows. Many workers (replicas) may run at once: a row
// is claimed with FOR UPDATE SKIP LOCKED and a lease, so each message goes
// to exactly one worker at a time, and it is marked sent right after the
// SMTP server accepted it.
type Worker struct {
	db     store.DBTX
	sender Sender
	o      WorkerOptions
	wake   chan struct{}
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
	if o.Batch <= 0 {
		o.Batch = 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Worker{db: db, sender: sender, o: o, wake: make(chan struct{}, 1)}
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
// ends is finished first (bounded by the SMTP timeout).
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
			if n < w.o.Batch {
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

// RunOnce claims one batch of due messages and tries to send each. It
// returns how many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	msgs, err := store.ClaimOutbox(ctx, w.db, w.o.Batch, w.o.Lease)
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		w.deliver(context.WithoutCancel(ctx), m)
	}
	return len(msgs), nil
}

func (w *Worker) deliver(ctx context.Context, m store.OutboxMessage) {
	sctx, cancel := context.WithTimeout(ctx, w.o.Lease/2)
	err := w.sender.Send(sctx, Message{ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML})
	cancel()
	uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	log := w.o.Logger.With("outbox_id", m.ID, "email_kind", m.Kind, "attempt", m.Attempts)
	if err == nil {
		if uerr := store.MarkOutboxSent(uctx, w.db, m.ID); uerr != nil {
			// The lease keeps others off the row for a while; retry marking.
			log.Error("mail worker: marking message sent", "error", uerr.Error())
			for i := 0; i < 5 && uerr != nil; i++ {
				time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
				uerr = store.MarkOutboxSent(uctx, w.db, m.ID)
			}
		}
		w.event(strings.ToUpper(m.Kind) + "_SENT")
		log.Info("email sent")
		return
	}
	msg := err.Error()
	var perm *PermanentError
	if errors.As(err, &perm) || time.Since(m.Created) > w.o.MaxAge {
		if uerr := store.MarkOutboxFailed(uctx, w.db, m.ID, msg); uerr != nil {
			log.Error("mail worker: marking message failed", "error", uerr.Error())
		}
		w.event("SEND_FAILED")
		log.Error("email given up", "error", msg)
		return
	}
	delay := Backoff(m.Attempts, w.o.RetryBase, w.o.RetryMax)
	if uerr := store.MarkOutboxRetry(uctx, w.db, m.ID, delay, msg); uerr != nil {
		log.Error("mail worker: scheduling retry", "error", uerr.Error())
	}
	w.event("SEND_RETRY")
	log.Warn("email not sent, will retry", "error", msg, "retry_in", delay.String())
}

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
