package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// User is a row of users.
type User struct {
	ID            string
	Email         string
	PasswordHash  string
	EmailVerified bool
	CreatedAt     time.Time
}

const userCols = "id::text, email, password_hash, email_verified_at IS NOT NULL, created_at"

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.EmailVerified, &u.CreatedAt)
	return u, notFound(err)
}

// UserByEmail finds a user by normalised email.
func UserByEmail(ctx context.Context, q DBTX, email string) (User, error) {
	return scanUser(q.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE email = $1", email))
}

// UserByID finds a user by id.
func UserByID(ctx context.Context, q DBTX, id string) (User, error) {
	return scanUser(q.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE id = $1::uuid", id))
}

// InsertUser creates a user unless the email is taken; it returns the id of
// the new user, or the existing user with inserted=false.
func InsertUser(ctx context.Context, q DBTX, email, passwordHash string) (u User, inserted bool, err error) {
	err = q.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ($1, $2)
		ON CONFLICT (email) DO NOTHING RETURNING `+userCols, email, passwordHash).
		Scan(&u.ID, &u.Email, &u.PasswordHash, &u.EmailVerified, &u.CreatedAt)
	if err == nil {
		return u, true, nil
	}
	if err != pgx.ErrNoRows {
		return u, false, fmt.Errorf("inserting user: %w", err)
	}
	u, err = UserByEmail(ctx, q, email)
	if err != nil {
		return u, false, fmt.Errorf("reading existing user: %w", err)
	}
	return u, false, nil
}

// UpdatePasswordHash stores a new password hash.
func UpdatePasswordHash(ctx context.Context, q DBTX, userID, hash string) error {
	_, err := q.Exec(ctx, "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1::uuid", userID, hash)
	return err
}

// UpdatePasswordHashIf replaces the hash only if it is still old (a
// transparent rehash must not overwrite a concurrent password change). The
// same password rehashed is no credential change: the login challenges
// that the old hash verified follow it (one statement, so a challenge is
// never left bound to a hash the user no longer has).
func UpdatePasswordHashIf(ctx context.Context, q DBTX, userID, old, hash string) error {
	_, err := q.Exec(ctx, `WITH u AS (UPDATE users SET password_hash = $3 WHERE id = $1::uuid AND password_hash = $2 RETURNING id)
		UPDATE login_challenges SET password_hash = $3
		WHERE user_id IN (SELECT id FROM u) AND password_hash = $2 AND used_at IS NULL`, userID, old, hash)
	return err
}

// MarkEmailVerified sets email_verified_at if unset.
func MarkEmailVerified(ctx context.Context, q DBTX, userID string) error {
	_, err := q.Exec(ctx, "UPDATE users SET email_verified_at = now(), updated_at = now() WHERE id = $1::uuid AND email_verified_at IS NULL", userID)
	return err
}

// Token purposes.
const (
	PurposeVerify = "verify"
	PurposeReset  = "reset"
)

// InsertEmailToken stores the hash of a single-use email token.
func InsertEmailToken(ctx context.Context, q DBTX, userID, purpose string, tokenHash []byte, ttl time.Duration) error {
	_, err := q.Exec(ctx, `INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at)
		VALUES ($1, $2::uuid, $3, now() + make_interval(secs => $4::float8))`, tokenHash, userID, purpose, ttl.Seconds())
	return err
}

// OutboxMessage is an email waiting in, or claimed from, the outbox.
type OutboxMessage struct {
	ID       int64
	Kind     string
	To       string
	Subject  string
	Text     string
	HTML     string
	Attempts int
	Created  time.Time
	Expires  time.Time // when its link stops working (zero: no link)
	// Set by ClaimOutbox:
	Lease   string // this claim's lease token
	Expired bool   // Expires has passed
}

// ErrLeaseLost: the message is no longer leased to the caller (the lease
// ran out and another worker claimed it).
var ErrLeaseLost = errors.New("outbox lease lost")

// InsertOutbox queues an email; it is sent after the transaction commits.
func InsertOutbox(ctx context.Context, q DBTX, m OutboxMessage) (int64, error) {
	var id int64
	var expires *time.Time
	if !m.Expires.IsZero() {
		expires = &m.Expires
	}
	err := q.QueryRow(ctx, `INSERT INTO outbox (kind, to_addr, subject, text_body, html_body, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, m.Kind, m.To, m.Subject, m.Text, m.HTML, expires).Scan(&id)
	return id, err
}

// ClaimOutbox leases up to limit due messages for lease, each under a new
// lease token: rows locked by another worker are skipped, so many workers
// never claim the same row while its lease runs.
func ClaimOutbox(ctx context.Context, q DBTX, limit int, lease time.Duration) ([]OutboxMessage, error) {
	rows, err := q.Query(ctx, `UPDATE outbox o SET locked_until = now() + make_interval(secs => $2::float8), attempts = o.attempts + 1,
		lease_token = gen_random_uuid()
		FROM (SELECT id FROM outbox
		      WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
		        AND (locked_until IS NULL OR locked_until < now())
		      ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) due
		WHERE o.id = due.id
		RETURNING o.id, o.kind, o.to_addr, o.subject, o.text_body, o.html_body, o.attempts, o.created_at,
		          coalesce(o.expires_at, 'infinity'), o.lease_token::text, coalesce(o.expires_at <= now(), false)`, limit, lease.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxMessage, error) {
		var m OutboxMessage
		var attempts int32
		var expires pgtype.Timestamptz
		err := r.Scan(&m.ID, &m.Kind, &m.To, &m.Subject, &m.Text, &m.HTML, &attempts, &m.Created, &expires, &m.Lease, &m.Expired)
		m.Attempts = int(attempts)
		if expires.InfinityModifier == pgtype.Finite {
			m.Expires = expires.Time
		}
		return m, err
	})
}

// leased runs an outbox update that applies only while lease is still the
// row's lease token ($1 id, $2 lease).
func leased(ctx context.Context, q DBTX, sql string, args ...any) error {
	tag, err := q.Exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	return nil
}

// MarkOutboxSent records a delivery and drops the bodies (they hold tokens).
func MarkOutboxSent(ctx context.Context, q DBTX, id int64, lease string) error {
	return leased(ctx, q, `UPDATE outbox SET sent_at = now(), locked_until = NULL, lease_token = NULL, last_error = '',
		text_body = '', html_body = '' WHERE id = $1 AND lease_token = $2::uuid`, id, lease)
}

// MarkOutboxRetry schedules another attempt after delay.
func MarkOutboxRetry(ctx context.Context, q DBTX, id int64, lease string, delay time.Duration, lastErr string) error {
	return leased(ctx, q, `UPDATE outbox SET locked_until = NULL, lease_token = NULL, last_error = $4,
		next_attempt_at = now() + make_interval(secs => $3::float8) WHERE id = $1 AND lease_token = $2::uuid`, id, lease, delay.Seconds(), truncate(lastErr, 1024))
}

// MarkOutboxFailed gives up on a message and drops its bodies.
func MarkOutboxFailed(ctx context.Context, q DBTX, id int64, lease string, lastErr string) error {
	return leased(ctx, q, `UPDATE outbox SET failed_at = now(), locked_until = NULL, lease_token = NULL, last_error = $3,
		text_body = '', html_body = '' WHERE id = $1 AND lease_token = $2::uuid`, id, lease, truncate(lastErr, 1024))
}

// AuditEntry is one row of audit_logs.
type AuditEntry struct {
	UserID    string // empty for none
	Kind      string
	IP        string
	UserAgent string
	Details   map[string]any
}

// InsertAudit appends to audit_logs.
func InsertAudit(ctx context.Context, q DBTX, e AuditEntry) error {
	details := "{}"
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("encoding audit details: %w", err)
		}
		details = string(b)
	}
	var uid any
	if e.UserID != "" {
		uid = e.UserID
	}
	_, err := q.Exec(ctx, `INSERT INTO audit_logs (user_id, kind, ip, user_agent, details)
		VALUES ($1::uuid, $2, $3, $4, $5::jsonb)`, uid, e.Kind, e.IP, truncate(e.UserAgent, 512), details)
	return err
}

// truncate makes s fit a text column: valid UTF-8 (PostgreSQL refuses any
// other byte sequence, and a User-Agent header or an SMTP reply may hold
// any byte above 0x7f) and at most n bytes.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Session is a row of sessions joined with its user.
type Session struct {
	ID            string
	TokenHash     []byte
	UserID        string
	Email         string
	EmailVerified bool
	CreatedAt     time.Time
	ExpiresAt     time.Time
	LastSeenAt    time.Time
	IP            string
	UserAgent     string
	AuthMethod    string    // password, mfa or passkey (session.Level*)
	AuthAt        time.Time // when it last authenticated
}

// InsertSession stores a new session, authenticated now (by the password
// when AuthMethod is empty), and fills in its id, times and method.
func InsertSession(ctx context.Context, q DBTX, s *Session) error {
	return q.QueryRow(ctx, `INSERT INTO sessions (token_hash, user_id, expires_at, ip, user_agent, auth_method)
		VALUES ($1, $2::uuid, $3, $4, $5, coalesce(nullif($6, ''), 'password'))
		RETURNING id::text, created_at, last_seen_at, auth_at, auth_method`,
		s.TokenHash, s.UserID, s.ExpiresAt, s.IP, truncate(s.UserAgent, 512), s.AuthMethod).
		Scan(&s.ID, &s.CreatedAt, &s.LastSeenAt, &s.AuthAt, &s.AuthMethod)
}

// ReauthenticateSession records that a user's session authenticated again
// now at method, and returns the session (without the user's columns).
func ReauthenticateSession(ctx context.Context, q DBTX, userID, id, method string) (Session, error) {
	s := Session{ID: id, UserID: userID}
	err := q.QueryRow(ctx, `UPDATE sessions SET auth_method = $3, auth_at = now()
		WHERE id = $1::uuid AND user_id = $2::uuid AND expires_at > now()
		RETURNING created_at, expires_at, last_seen_at, ip, user_agent, auth_method, auth_at`, id, userID, method).
		Scan(&s.CreatedAt, &s.ExpiresAt, &s.LastSeenAt, &s.IP, &s.UserAgent, &s.AuthMethod, &s.AuthAt)
	return s, notFound(err)
}

// LockSession locks (FOR SHARE) the unexpired session id of userID, so that
// a write made on its authority commits only while it exists: an ending of
// the user's sessions (logout-all, a reset, factors-reset) either waits for
// that write or makes it fail here with ErrNotFound.
func LockSession(ctx context.Context, q DBTX, userID, id string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM sessions WHERE id = $1::uuid AND user_id = $2::uuid AND expires_at > now() FOR SHARE`,
		id, userID).Scan(&one)
	return notFound(err)
}

// SessionByTokenHash finds an unexpired session and its user; with idle > 0,
// only one whose last_seen_at is less than idle ago.
func SessionByTokenHash(ctx context.Context, q DBTX, tokenHash []byte, idle time.Duration) (Session, error) {
	s := Session{TokenHash: tokenHash}
	err := q.QueryRow(ctx, `SELECT s.id::text, s.user_id::text, u.email, u.email_verified_at IS NOT NULL,
		s.created_at, s.expires_at, s.last_seen_at, s.ip, s.user_agent, s.auth_method, s.auth_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > now()
		  AND ($2::float8 = 0 OR s.last_seen_at > now() - make_interval(secs => $2::float8))`, tokenHash, idle.Seconds()).
		Scan(&s.ID, &s.UserID, &s.Email, &s.EmailVerified, &s.CreatedAt, &s.ExpiresAt, &s.LastSeenAt, &s.IP, &s.UserAgent, &s.AuthMethod, &s.AuthAt)
	return s, notFound(err)
}

// ListSessions returns a user's unexpired sessions, newest first; with
// idle > 0, only those whose last_seen_at is less than idle ago.
func ListSessions(ctx context.Context, q DBTX, userID string, idle time.Duration) ([]Session, error) {
	rows, err := q.Query(ctx, `SELECT id::text, created_at, expires_at, last_seen_at, ip, user_agent
		FROM sessions WHERE user_id = $1::uuid AND expires_at > now()
		  AND ($2::float8 = 0 OR last_seen_at > now() - make_interval(secs => $2::float8))
		ORDER BY created_at DESC, id`, userID, idle.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Session, error) {
		s := Session{UserID: userID}
		err := r.Scan(&s.ID, &s.CreatedAt, &s.ExpiresAt, &s.LastSeenAt, &s.IP, &s.UserAgent)
		return s, err
	})
}

// RevocationKeep is how long a revoked session's hash stays in
// session_revocations (at most until the session would have expired): longer
// than a session may stay cached in Redis (session.maxCache checks it).
const RevocationKeep = 70 * time.Minute

// revokeDeleted is appended to a "d AS (DELETE FROM sessions ... RETURNING
// token_hash, expires_at)" CTE: it records the revocations in the same
// statement, so a revocation that commits is durable whatever Redis does.
const revokeDeleted = `, r AS (INSERT INTO session_revocations (token_hash, keep_until)
		SELECT token_hash, LEAST(expires_at, now() + make_interval(secs => %d)) FROM d
		ON CONFLICT (token_hash) DO NOTHING)
	SELECT token_hash FROM d`

var revokeSQL = fmt.Sprintf(revokeDeleted, int(RevocationKeep.Seconds()))

// DeleteSession revokes one of a user's sessions and returns its token hash.
func DeleteSession(ctx context.Context, q DBTX, userID, id string) ([]byte, error) {
	var h []byte
	err := q.QueryRow(ctx, `WITH d AS (DELETE FROM sessions WHERE id = $1::uuid AND user_id = $2::uuid
		RETURNING token_hash, expires_at)`+revokeSQL, id, userID).Scan(&h)
	return h, notFound(err)
}

// DeleteUserSessions revokes every session of a user except exceptID (may
// be empty) and returns their token hashes.
func DeleteUserSessions(ctx context.Context, q DBTX, userID, exceptID string) ([][]byte, error) {
	rows, err := q.Query(ctx, `WITH d AS (DELETE FROM sessions WHERE user_id = $1::uuid AND ($2 = '' OR id::text <> $2)
		RETURNING token_hash, expires_at)`+revokeSQL, userID, exceptID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[[]byte])
}

// Revocation is one row of session_revocations.
type Revocation struct {
	TokenHash []byte
	KeepUntil time.Time
}

// RevocationsSince returns the revocations still kept that were recorded
// at or after since (all of them when since is zero), and the database's
// clock.
func RevocationsSince(ctx context.Context, q DBTX, since time.Time) (now time.Time, revs []Revocation, err error) {
	var hs [][]byte
	var keeps []time.Time
	var from *time.Time
	if !since.IsZero() {
		from = &since
	}
	err = q.QueryRow(ctx, `SELECT now(), coalesce(array_agg(token_hash), '{}'), coalesce(array_agg(keep_until), '{}')
		FROM session_revocations WHERE ($1::timestamptz IS NULL OR revoked_at >= $1) AND keep_until > now()`, from).
		Scan(&now, &hs, &keeps)
	if err != nil {
		return now, nil, err
	}
	revs = make([]Revocation, len(hs))
	for i := range hs {
		revs[i] = Revocation{TokenHash: hs[i], KeepUntil: keeps[i]}
	}
	return now, revs, nil
}

// TouchSessions sets last_seen_at = now() on the given sessions.
func TouchSessions(ctx context.Context, q DBTX, ids []string) error {
	_, err := q.Exec(ctx, "UPDATE sessions SET last_seen_at = now() WHERE id = ANY($1::uuid[])", ids)
	return err
}

// DeleteAllSessions revokes every session (recording each revocation, as
// DeleteUserSessions does) and returns how many there were. A declared restore
// runs it on the restored data: sessions of the backup may have been revoked
// after it was taken (docs/backup-and-restore.md, "Sessions after a restore").
func DeleteAllSessions(ctx context.Context, q DBTX) (int64, error) {
	tag, err := q.Exec(ctx, `WITH d AS (DELETE FROM sessions RETURNING token_hash, expires_at)`+revokeSQL)
	return tag.RowsAffected(), err
}
