package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// The public email flows (signup, resend-verification, forgot-password) each
// run as ONE statement whatever the state of the address: the branches
// (no account, unverified, verified) differ only in which rows the statement
// writes, never in the number of round trips, so their response time does
// not tell them apart. Their emails are rendered by the caller beforehand,
// for every branch. An email with a token link expires with the token
// (outbox.expires_at: the worker gives up on it then).

// Mail is a rendered email for the outbox; the recipient is the flow's address.
type Mail struct {
	Kind, Subject, Text, HTML string
}

// Who is the client written into the audit rows of a flow.
type Who struct{ IP, UserAgent string }

// SignupResult tells which branch a signup took.
type SignupResult struct {
	Inserted bool // a new account
	Verified bool // the address already had a verified account
}

// errRetry: a concurrent signup of the same address committed between the
// statement's snapshot and its insert; running it again sees that row.
var errRetry = errors.New("signup raced with another signup")

// Signup creates the account of email with hash, or finds it. An unverified
// account (new or not) gets a verification token carrying hash (the password
// of this signup, activated only by this token) and the verify email; a
// verified one gets the account-exists email and keeps its password.
func Signup(ctx context.Context, q DBTX, email, hash string, tokenHash []byte, ttl time.Duration, verify, exists Mail, w Who) (SignupResult, error) {
	for range 2 {
		var r SignupResult
		err := q.QueryRow(ctx, `WITH ins AS (
			INSERT INTO users (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING
			RETURNING id, false AS verified, true AS inserted),
		u AS (
			SELECT id, verified, inserted FROM ins
			UNION ALL SELECT id, email_verified_at IS NOT NULL, false FROM users WHERE email = $1),
		tok AS (
			INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at, password_hash)
			SELECT $3, id, 'verify', now() + make_interval(secs => $4::float8), $2 FROM u WHERE NOT verified),
		mail AS (
			INSERT INTO outbox (kind, to_addr, subject, text_body, html_body, expires_at)
			SELECT m.kind, $1, m.subject, m.body, m.html, m.expires FROM u CROSS JOIN LATERAL (
				SELECT $5::text, $6::text, $7::text, $8::text, now() + make_interval(secs => $4::float8) WHERE NOT u.verified
				UNION ALL SELECT $9::text, $10::text, $11::text, $12::text, NULL::timestamptz WHERE u.verified) AS m(kind, subject, body, html, expires)),
		aud AS (
			INSERT INTO audit_logs (user_id, kind, ip, user_agent, details)
			SELECT u.id, a.kind, $13, $14, a.details::jsonb FROM u CROSS JOIN LATERAL (
				SELECT 'SIGNUP', '{}' WHERE u.inserted
				UNION ALL SELECT 'VERIFY_SENT', '{}' WHERE NOT u.verified
				UNION ALL SELECT 'SIGNUP', '{"existing_account":true}' WHERE u.verified) AS a(kind, details))
		SELECT inserted, verified FROM u`,
			email, hash, tokenHash, ttl.Seconds(),
			verify.Kind, verify.Subject, verify.Text, verify.HTML,
			exists.Kind, exists.Subject, exists.Text, exists.HTML,
			w.IP, truncate(w.UserAgent, 512)).Scan(&r.Inserted, &r.Verified)
		if errors.Is(notFound(err), ErrNotFound) {
			err = errRetry
			continue
		}
		return r, err
	}
	return SignupResult{}, errRetry
}

// ResendVerification gives an unverified account of email a new
// verification token and email. The token carries the password of the
// newest signup (the one the owner most likely made and lost the email of);
// older tokens stay valid, each for its own password. It reports whether
// the address has an unverified account.
func ResendVerification(ctx context.Context, q DBTX, email string, tokenHash []byte, ttl time.Duration, m Mail, w Who) (bool, error) {
	var sent bool
	err := q.QueryRow(ctx, `WITH u AS (
			SELECT id FROM users WHERE email = $1 AND email_verified_at IS NULL),
		tok AS (
			INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at, password_hash)
			SELECT $2, u.id, 'verify', now() + make_interval(secs => $3::float8),
				(SELECT t.password_hash FROM email_tokens t WHERE t.user_id = u.id AND t.purpose = 'verify' ORDER BY t.id DESC LIMIT 1)
			FROM u),
		mail AS (
			INSERT INTO outbox (kind, to_addr, subject, text_body, html_body, expires_at)
			SELECT $4, $1, $5, $6, $7, now() + make_interval(secs => $3::float8) FROM u),
		aud AS (
			INSERT INTO audit_logs (user_id, kind, ip, user_agent) SELECT id, 'VERIFY_SENT', $8, $9 FROM u)
		SELECT EXISTS (SELECT 1 FROM u)`,
		email, tokenHash, ttl.Seconds(), m.Kind, m.Subject, m.Text, m.HTML, w.IP, truncate(w.UserAgent, 512)).Scan(&sent)
	return sent, err
}

// RequestReset gives the account of email a new reset token (ending its
// older ones) and the reset email. Unknown addresses get an audit row only.
// It reports whether the address has an account.
func RequestReset(ctx context.Context, q DBTX, email string, tokenHash []byte, ttl time.Duration, m Mail, w Who) (bool, error) {
	var known bool
	err := q.QueryRow(ctx, `WITH u AS (
			SELECT id FROM users WHERE email = $1),
		old AS (
			UPDATE email_tokens SET used_at = now()
			WHERE user_id = (SELECT id FROM u) AND purpose = 'reset' AND used_at IS NULL),
		tok AS (
			INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at)
			SELECT $2, id, 'reset', now() + make_interval(secs => $3::float8) FROM u),
		mail AS (
			INSERT INTO outbox (kind, to_addr, subject, text_body, html_body, expires_at)
			SELECT $4, $1, $5, $6, $7, now() + make_interval(secs => $3::float8) FROM u),
		aud AS (
			INSERT INTO audit_logs (user_id, kind, ip, user_agent, details)
			VALUES ((SELECT id FROM u), 'PASSWORD_RESET_REQUESTED', $8, $9,
				CASE WHEN EXISTS (SELECT 1 FROM u) THEN '{}' ELSE '{"account":"unknown"}' END::jsonb))
		SELECT EXISTS (SELECT 1 FROM u)`,
		email, tokenHash, ttl.Seconds(), m.Kind, m.Subject, m.Text, m.HTML, w.IP, truncate(w.UserAgent, 512)).Scan(&known)
	return known, err
}

// EmailTokenUser returns the user of an unused, unexpired token without
// consuming it: the cheap check before any expensive work.
func EmailTokenUser(ctx context.Context, q DBTX, purpose string, tokenHash []byte) (string, error) {
	var uid string
	err := q.QueryRow(ctx, `SELECT user_id::text FROM email_tokens
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()`, tokenHash, purpose).Scan(&uid)
	return uid, notFound(err)
}

// LockUser reads a user and locks its row until the transaction ends. Every
// credential write (verify, reset, change, login's session insert) locks the
// user first, so they serialise on one row in one order and never deadlock.
func LockUser(ctx context.Context, q DBTX, id string) (User, error) {
	return scanUser(q.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE id = $1::uuid FOR UPDATE", id))
}

// ConsumeEmailToken marks an unused, unexpired token of userID used and
// returns the password hash it carries ("" for none); ErrNotFound for an
// unknown, used or expired token.
func ConsumeEmailToken(ctx context.Context, q DBTX, purpose string, tokenHash []byte, userID string) (string, error) {
	var pending *string
	err := q.QueryRow(ctx, `UPDATE email_tokens SET used_at = now()
		WHERE token_hash = $1 AND purpose = $2 AND user_id = $3::uuid AND used_at IS NULL AND expires_at > now()
		RETURNING password_hash`, tokenHash, purpose, userID).Scan(&pending)
	if pending == nil {
		return "", notFound(err)
	}
	return *pending, notFound(err)
}

// EndEmailTokens marks every unused email token of a user used (verify and
// reset): a credential change ends every link mailed before it.
func EndEmailTokens(ctx context.Context, q DBTX, userID string) error {
	_, err := q.Exec(ctx, "UPDATE email_tokens SET used_at = now() WHERE user_id = $1::uuid AND used_at IS NULL", userID)
	return err
}

// SessionExists tells whether a session of userID still exists (not revoked).
func SessionExists(ctx context.Context, q DBTX, userID, id string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1::uuid AND user_id = $2::uuid)", id, userID).Scan(&ok)
	return ok, err
}

// HashParamSamples returns one stored password hash per argon2 parameter
// set in use (a full scan: run it once at start, off the request path).
func HashParamSamples(ctx context.Context, q DBTX) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (substring(password_hash from '^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+'))
		password_hash FROM users`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
