package store

import (
	"context"
	"time"
)

// Factors are the second factors a user has.
type Factors struct {
	TOTP          bool // a confirmed TOTP secret
	RecoveryCodes int  // unused recovery codes
	Passkeys      int  // registered passkeys
}

// Any tells whether the user has a second factor (recovery codes alone are
// not one: they come with a factor and are its fallback).
func (f Factors) Any() bool { return f.TOTP || f.Passkeys > 0 }

// UserFactors reads the second factors of a user.
func UserFactors(ctx context.Context, q DBTX, userID string) (Factors, error) {
	var f Factors
	err := q.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM user_totp WHERE user_id = $1::uuid AND confirmed_at IS NOT NULL),
		(SELECT count(*) FROM recovery_codes WHERE user_id = $1::uuid AND used_at IS NULL),
		(SELECT count(*) FROM passkeys WHERE user_id = $1::uuid)`, userID).
		Scan(&f.TOTP, &f.RecoveryCodes, &f.Passkeys)
	return f, err
}

// TOTP is a row of user_totp.
type TOTP struct {
	SecretEnc []byte
	KeyID     string
	Confirmed bool
	LastStep  int64
}

// UserTOTP reads a user's TOTP secret (confirmed or not).
func UserTOTP(ctx context.Context, q DBTX, userID string) (TOTP, error) {
	var t TOTP
	err := q.QueryRow(ctx, `SELECT secret_enc, key_id, confirmed_at IS NOT NULL, last_step FROM user_totp WHERE user_id = $1::uuid`, userID).
		Scan(&t.SecretEnc, &t.KeyID, &t.Confirmed, &t.LastStep)
	return t, notFound(err)
}

// PutPendingTOTP stores a new unconfirmed secret, replacing an unconfirmed
// one; false when the user already has a confirmed secret.
func PutPendingTOTP(ctx context.Context, q DBTX, userID string, enc []byte, keyID string) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO user_totp (user_id, secret_enc, key_id) VALUES ($1::uuid, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET secret_enc = $2, key_id = $3, last_step = 0, created_at = now()
		WHERE user_totp.confirmed_at IS NULL`, userID, enc, keyID)
	return tag.RowsAffected() == 1, err
}

// ConfirmTOTP marks the pending secret encrypted as enc confirmed, with step
// as the last accepted step; false when it is no longer the pending one.
func ConfirmTOTP(ctx context.Context, q DBTX, userID string, enc []byte, step int64) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE user_totp SET confirmed_at = now(), last_step = $3
		WHERE user_id = $1::uuid AND confirmed_at IS NULL AND secret_enc = $2`, userID, enc, step)
	return tag.RowsAffected() == 1, err
}

// AdvanceTOTPStep records step as the last accepted step of a user's
// confirmed secret, only if it is later than the one recorded: one
// statement, so two replicas given the same code accept it once.
func AdvanceTOTPStep(ctx context.Context, q DBTX, userID string, step int64) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE user_totp SET last_step = $2
		WHERE user_id = $1::uuid AND confirmed_at IS NOT NULL AND last_step < $2`, userID, step)
	return tag.RowsAffected() == 1, err
}

// ReencryptTOTP replaces a secret encrypted under oldKey (a pepper being
// retired) by enc under keyID; a no-op if it changed meanwhile.
func ReencryptTOTP(ctx context.Context, q DBTX, userID, oldKey string, enc []byte, keyID string) error {
	_, err := q.Exec(ctx, `UPDATE user_totp SET secret_enc = $3, key_id = $4 WHERE user_id = $1::uuid AND key_id = $2`, userID, oldKey, enc, keyID)
	return err
}

// DeleteTOTP removes a user's TOTP secret; false when there was none.
func DeleteTOTP(ctx context.Context, q DBTX, userID string) (bool, error) {
	tag, err := q.Exec(ctx, `DELETE FROM user_totp WHERE user_id = $1::uuid AND confirmed_at IS NOT NULL`, userID)
	return tag.RowsAffected() == 1, err
}

// ReplaceRecoveryCodes deletes a user's recovery codes and stores hashes.
func ReplaceRecoveryCodes(ctx context.Context, q DBTX, userID string, hashes [][]byte) error {
	_, err := q.Exec(ctx, `WITH d AS (DELETE FROM recovery_codes WHERE user_id = $1::uuid)
		INSERT INTO recovery_codes (user_id, code_hash) SELECT $1::uuid, h FROM unnest($2::bytea[]) AS h`, userID, hashes)
	return err
}

// UseRecoveryCode marks an unused recovery code of a user used and returns
// how many remain unused; ErrNotFound when it is not an unused code of hers.
func UseRecoveryCode(ctx context.Context, q DBTX, userID string, hash []byte) (int, error) {
	var left int
	err := q.QueryRow(ctx, `WITH u AS (UPDATE recovery_codes SET used_at = now()
		WHERE user_id = $1::uuid AND code_hash = $2 AND used_at IS NULL RETURNING id)
		SELECT (SELECT count(*) FROM recovery_codes WHERE user_id = $1::uuid AND used_at IS NULL) - 1 FROM u`, userID, hash).Scan(&left)
	return left, notFound(err)
}

// FactorsRemoved is what ResetFactors removed.
type FactorsRemoved struct {
	TOTP          bool  `json:"totp"` // a confirmed TOTP (a pending enrolment goes too)
	Passkeys      int64 `json:"passkeys"`
	RecoveryCodes int64 `json:"recovery_codes"`
}

// ResetFactors removes every second factor of a user: the TOTP secret
// (confirmed or pending), the passkeys and the recovery codes, and the
// user's WebAuthn ceremonies in progress.
func ResetFactors(ctx context.Context, q DBTX, userID string) (FactorsRemoved, error) {
	var f FactorsRemoved
	err := q.QueryRow(ctx, `WITH t AS (DELETE FROM user_totp WHERE user_id = $1::uuid RETURNING confirmed_at),
		p AS (DELETE FROM passkeys WHERE user_id = $1::uuid RETURNING id),
		r AS (DELETE FROM recovery_codes WHERE user_id = $1::uuid RETURNING id),
		w AS (DELETE FROM webauthn_challenges WHERE user_id = $1::uuid)
		SELECT EXISTS (SELECT 1 FROM t WHERE confirmed_at IS NOT NULL), (SELECT count(*) FROM p), (SELECT count(*) FROM r)`,
		userID).Scan(&f.TOTP, &f.Passkeys, &f.RecoveryCodes)
	return f, err
}

// DeleteRecoveryCodes removes every recovery code of a user.
func DeleteRecoveryCodes(ctx context.Context, q DBTX, userID string) error {
	_, err := q.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1::uuid`, userID)
	return err
}

// Challenge purposes.
const (
	ChallengeMFA    = "mfa"    // completes with a second factor
	ChallengeEnroll = "enroll" // completes only by enrolling one (a factor is required)
)

// Challenge is a live row of login_challenges with its user.
type Challenge struct {
	ID           string
	UserID       string
	Email        string
	Purpose      string
	PasswordHash string // the hash the password step verified
	ExpiresAt    time.Time
}

// InsertChallenge stores a login challenge.
func InsertChallenge(ctx context.Context, q DBTX, tokenHash []byte, userID, purpose, passwordHash string, ttl time.Duration) (time.Time, error) {
	var exp time.Time
	err := q.QueryRow(ctx, `INSERT INTO login_challenges (token_hash, user_id, purpose, password_hash, expires_at)
		VALUES ($1, $2::uuid, $3, $4, now() + make_interval(secs => $5::float8)) RETURNING expires_at`,
		tokenHash, userID, purpose, passwordHash, ttl.Seconds()).Scan(&exp)
	return exp, err
}

// LiveChallenge finds an unused, unexpired challenge with attempts left
// whose password is still the user's.
func LiveChallenge(ctx context.Context, q DBTX, tokenHash []byte, maxAttempts int) (Challenge, error) {
	var c Challenge
	err := q.QueryRow(ctx, `SELECT c.id::text, c.user_id::text, u.email, c.purpose, c.password_hash, c.expires_at
		FROM login_challenges c JOIN users u ON u.id = c.user_id
		WHERE c.token_hash = $1 AND c.used_at IS NULL AND c.expires_at > now() AND c.attempts < $2
		  AND c.password_hash = u.password_hash`, tokenHash, maxAttempts).
		Scan(&c.ID, &c.UserID, &c.Email, &c.Purpose, &c.PasswordHash, &c.ExpiresAt)
	return c, notFound(err)
}

// ClaimChallengeAttempt counts one attempt on a live challenge before its
// factor is checked; ErrNotFound once it has none left (or is dead), so
// parallel guesses never exceed maxAttempts.
func ClaimChallengeAttempt(ctx context.Context, q DBTX, id string, maxAttempts int) error {
	var n int
	err := q.QueryRow(ctx, `UPDATE login_challenges SET attempts = attempts + 1
		WHERE id = $1::uuid AND used_at IS NULL AND expires_at > now() AND attempts < $2 RETURNING attempts`, id, maxAttempts).Scan(&n)
	return notFound(err)
}

// ConsumeChallenge marks a challenge used if it is unused, unexpired and of
// the password hash given (the user's, read under the user's lock).
func ConsumeChallenge(ctx context.Context, q DBTX, id, passwordHash string) error {
	var one int
	err := q.QueryRow(ctx, `UPDATE login_challenges SET used_at = now()
		WHERE id = $1::uuid AND used_at IS NULL AND expires_at > now() AND password_hash = $2 RETURNING 1`, id, passwordHash).Scan(&one)
	return notFound(err)
}
