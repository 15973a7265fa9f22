// Package housekeeping deletes what the authserver no longer needs:
// expired sessions, used or expired email tokens, sent outbox rows, audit
// rows past retention, session revocations no cache can hold any more and
// expired login challenges. It runs in every replica; batches are small
// and chosen with FOR UPDATE SKIP LOCKED, so replicas never block each
// other or hold long locks on a hot table.
package housekeeping

import (
	"context"
	"log/slog"
	"time"

	"github.com/leanauth/authstack/authserver/store"
)

// Options configure the sweeper.
type Options struct {
	Interval       time.Duration
	Batch          int
	AuditRetention time.Duration
	OutboxKeep     time.Duration // sent/failed outbox rows are kept this long
	TokenGrace     time.Duration // used email tokens are kept this long
	MaxBatches     int           // per table per run
	Pause          time.Duration // between batches
	Logger         *slog.Logger
}

// Sweeper runs the deletions.
type Sweeper struct {
	db store.DBTX
	o  Options
}

// New returns a sweeper over db (the pool).
func New(db store.DBTX, o Options) *Sweeper {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.OutboxKeep <= 0 {
		o.OutboxKeep = 24 * time.Hour
	}
	if o.TokenGrace <= 0 {
		o.TokenGrace = time.Hour
	}
	if o.MaxBatches <= 0 {
		o.MaxBatches = 200
	}
	if o.Pause <= 0 {
		o.Pause = 20 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Sweeper{db: db, o: o}
}

// Result counts the rows deleted by one run.
type Result struct {
	Sessions, EmailTokens, Outbox, Audit, Revocations, Challenges int64
	Ceremonies                                                    int64 // expired WebAuthn challenges
}

// Run sweeps every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := s.SweepOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("housekeeping sweep", "error", err.Error())
		}
		if res != (Result{}) {
			s.o.Logger.Info("housekeeping sweep", "sessions", res.Sessions, "email_tokens", res.EmailTokens, "outbox", res.Outbox, "audit_logs", res.Audit, "login_challenges", res.Challenges, "webauthn_challenges", res.Ceremonies)
		}
	}
}

// SweepOnce deletes in batches until each table has nothing left to delete
// (or MaxBatches were done).
func (s *Sweeper) SweepOnce(ctx context.Context) (Result, error) {
	var res Result
	steps := []struct {
		n   *int64
		del func(context.Context) (int64, error)
	}{
		{&res.Sessions, func(ctx context.Context) (int64, error) { return store.SweepExpiredSessions(ctx, s.db, s.o.Batch) }},
		{&res.EmailTokens, func(ctx context.Context) (int64, error) {
			return store.SweepEmailTokens(ctx, s.db, s.o.Batch, s.o.TokenGrace)
		}},
		{&res.Outbox, func(ctx context.Context) (int64, error) {
			return store.SweepOutbox(ctx, s.db, s.o.Batch, s.o.OutboxKeep)
		}},
		{&res.Audit, func(ctx context.Context) (int64, error) {
			return store.SweepAudit(ctx, s.db, s.o.Batch, s.o.AuditRetention)
		}},
		{&res.Revocations, func(ctx context.Context) (int64, error) { return store.SweepRevocations(ctx, s.db, s.o.Batch) }},
		{&res.Challenges, func(ctx context.Context) (int64, error) { return store.SweepChallenges(ctx, s.db, s.o.Batch) }},
		{&res.Ceremonies, func(ctx context.Context) (int64, error) { return store.SweepCeremonies(ctx, s.db, s.o.Batch) }},
	}
	for _, st := range steps {
		for i := 0; i < s.o.MaxBatches; i++ {
			n, err := st.del(ctx)
			if err != nil {
				return res, err
			}
			*st.n += n
			if n < int64(s.o.Batch) {
				break
			}
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(s.o.Pause):
			}
		}
	}
	return res, nil
}
