package store

import (
	"context"
	"time"
)

// Each sweep deletes at most batch rows chosen with FOR UPDATE SKIP LOCKED:
// a short transaction per batch, never a long lock on a hot table, and
// several replicas sweeping at once skip each other's rows.

// SweepExpiredSessions deletes up to batch expired sessions.
func SweepExpiredSessions(ctx context.Context, q DBTX, batch int) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED)`, batch)
	return tag.RowsAffected(), err
}

// SweepEmailTokens deletes up to batch used or expired email tokens
// (used ones are kept for grace so a double click still reports "used").
func SweepEmailTokens(ctx context.Context, q DBTX, batch int, grace time.Duration) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM email_tokens WHERE id IN (
		SELECT id FROM email_tokens
		WHERE expires_at < now() OR used_at < now() - make_interval(secs => $2::float8)
		LIMIT $1 FOR UPDATE SKIP LOCKED)`, batch, grace.Seconds())
	return tag.RowsAffected(), err
}

// SweepOutbox deletes up to batch sent or failed outbox rows older than keep.
func SweepOutbox(ctx context.Context, q DBTX, batch int, keep time.Duration) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM outbox WHERE id IN (
		SELECT id FROM outbox
		WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL) AND created_at < now() - make_interval(secs => $2::float8)
		LIMIT $1 FOR UPDATE SKIP LOCKED)`, batch, keep.Seconds())
	return tag.RowsAffected(), err
}

// SweepAudit deletes up to batch audit rows older than retention.
func SweepAudit(ctx context.Context, q DBTX, batch int, retention time.Duration) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM audit_logs WHERE id IN (
		SELECT id FROM audit_logs WHERE at < now() - make_interval(secs => $2::float8)
		LIMIT $1 FOR UPDATE SKIP LOCKED)`, batch, retention.Seconds())
	return tag.RowsAffected(), err
}

// SweepRevocations deletes up to batch session revocations no cache entry
// can outlive any more.
func SweepRevocations(ctx context.Context, q DBTX, batch int) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM session_revocations WHERE token_hash IN (
		SELECT token_hash FROM session_revocations WHERE keep_until < now() LIMIT $1 FOR UPDATE SKIP LOCKED)`, batch)
	return tag.RowsAffected(), err
}

// SweepChallenges deletes up to batch expired login challenges (a used one
// is dead too, but kept until it expires: nothing is gained by sooner).
func SweepChallenges(ctx context.Context, q DBTX, batch int) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM login_challenges WHERE id IN (
		SELECT id FROM login_challenges WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED)`, batch)
	return tag.RowsAffected(), err
}
