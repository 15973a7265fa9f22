package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrPasskeyExists: the credential id is already registered (to anyone).
var ErrPasskeyExists = errors.New("passkey credential id already registered")

// Passkey is a row of passkeys: one WebAuthn credential of an account.
type Passkey struct {
	ID                string
	UserID            string
	RPID              string
	CredentialID      []byte
	PublicKey         []byte
	SignCount         uint32
	CloneWarning      bool
	Transports        []string
	AAGUID            []byte
	AttestationType   string
	AttestationFormat string
	Attachment        string
	UserPresent       bool
	UserVerified      bool
	BackupEligible    bool
	BackupState       bool
	Name              string
	CreatedAt         time.Time
	LastUsedAt        *time.Time
}

const passkeyCols = `id::text, user_id::text, rp_id, credential_id, public_key, sign_count, clone_warning, transports,
	aaguid, attestation_type, attestation_format, attachment, user_present, user_verified, backup_eligible,
	backup_state, name, created_at, last_used_at`

func scanPasskey(row pgx.Row) (Passkey, error) {
	var p Passkey
	var count int64
	err := row.Scan(&p.ID, &p.UserID, &p.RPID, &p.CredentialID, &p.PublicKey, &count, &p.CloneWarning, &p.Transports,
		&p.AAGUID, &p.AttestationType, &p.AttestationFormat, &p.Attachment, &p.UserPresent, &p.UserVerified,
		&p.BackupEligible, &p.BackupState, &p.Name, &p.CreatedAt, &p.LastUsedAt)
	p.SignCount = uint32(count)
	return p, notFound(err)
}

// WebAuthnHandle returns the user's WebAuthn user handle, storing fresh
// (random, from the caller) when the user has none yet.
func WebAuthnHandle(ctx context.Context, q DBTX, userID string, fresh []byte) ([]byte, error) {
	var h []byte
	err := q.QueryRow(ctx, `WITH ins AS (
		INSERT INTO webauthn_users (user_id, handle) VALUES ($1::uuid, $2) ON CONFLICT (user_id) DO NOTHING RETURNING handle)
		SELECT handle FROM ins UNION ALL SELECT handle FROM webauthn_users WHERE user_id = $1::uuid LIMIT 1`, userID, fresh).Scan(&h)
	if err != nil {
		return nil, fmt.Errorf("reading webauthn user handle: %w", err)
	}
	return h, nil
}

// UserByWebAuthnHandle finds the user a user handle belongs to.
func UserByWebAuthnHandle(ctx context.Context, q DBTX, handle []byte) (User, []byte, error) {
	var u User
	var h []byte
	err := q.QueryRow(ctx, `SELECT u.id::text, u.email, u.password_hash, u.email_verified_at IS NOT NULL, u.created_at, w.handle
		FROM webauthn_users w JOIN users u ON u.id = w.user_id WHERE w.handle = $1`, handle).
		Scan(&u.ID, &u.Email, &u.PasswordHash, &u.EmailVerified, &u.CreatedAt, &h)
	return u, h, notFound(err)
}

// InsertPasskey stores a new credential; ErrPasskeyExists when its id is
// already registered.
func InsertPasskey(ctx context.Context, q DBTX, p Passkey) (Passkey, error) {
	if p.Transports == nil {
		p.Transports = []string{}
	}
	out, err := scanPasskey(q.QueryRow(ctx, `INSERT INTO passkeys (user_id, rp_id, credential_id, public_key, sign_count,
		transports, aaguid, attestation_type, attestation_format, attachment, user_present, user_verified,
		backup_eligible, backup_state, name)
		VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (credential_id) DO NOTHING RETURNING `+passkeyCols,
		p.UserID, p.RPID, p.CredentialID, p.PublicKey, int64(p.SignCount), p.Transports, p.AAGUID, p.AttestationType,
		p.AttestationFormat, p.Attachment, p.UserPresent, p.UserVerified, p.BackupEligible, p.BackupState, p.Name))
	if errors.Is(err, ErrNotFound) {
		return out, ErrPasskeyExists
	}
	return out, err
}

// UserPasskeys lists a user's passkeys, newest first; rpID "" means any
// relying party.
func UserPasskeys(ctx context.Context, q DBTX, userID, rpID string) ([]Passkey, error) {
	rows, err := q.Query(ctx, "SELECT "+passkeyCols+` FROM passkeys WHERE user_id = $1::uuid AND ($2 = '' OR rp_id = $2)
		ORDER BY created_at DESC, id`, userID, rpID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Passkey, error) { return scanPasskey(r) })
}

// PasskeyByCredentialID finds a credential of the relying party by its id.
func PasskeyByCredentialID(ctx context.Context, q DBTX, rpID string, credentialID []byte) (Passkey, error) {
	return scanPasskey(q.QueryRow(ctx, "SELECT "+passkeyCols+" FROM passkeys WHERE credential_id = $1 AND rp_id = $2", credentialID, rpID))
}

// RecordPasskeyUse stores the state an assertion left: the new signature
// counter, the flags and the time. The counter only moves forward: when
// another assertion already stored this count or a higher one (a clone, or
// the same assertion twice), nothing is written and ErrNotFound is
// returned, as for a credential removed meanwhile. Authenticators that keep
// no counter report 0 every time, which is allowed while the stored one is 0.
func RecordPasskeyUse(ctx context.Context, q DBTX, id string, count uint32, verified, backupState bool) error {
	tag, err := q.Exec(ctx, `UPDATE passkeys SET sign_count = $2, user_verified = user_verified OR $3,
		backup_state = $4, last_used_at = now()
		WHERE id = $1::uuid AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))`, id, int64(count), verified, backupState)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// FlagPasskeyClone records that a credential presented a counter that did
// not move forward (a cloned authenticator may exist).
func FlagPasskeyClone(ctx context.Context, q DBTX, id string) error {
	_, err := q.Exec(ctx, "UPDATE passkeys SET clone_warning = true WHERE id = $1::uuid", id)
	return err
}

// RenamePasskey renames one of userID's passkeys.
func RenamePasskey(ctx context.Context, q DBTX, userID, id, name string) (Passkey, error) {
	return scanPasskey(q.QueryRow(ctx, "UPDATE passkeys SET name = $3 WHERE id = $2::uuid AND user_id = $1::uuid RETURNING "+passkeyCols,
		userID, id, name))
}

// DeletePasskey removes one of userID's passkeys.
func DeletePasskey(ctx context.Context, q DBTX, userID, id string) (Passkey, error) {
	return scanPasskey(q.QueryRow(ctx, "DELETE FROM passkeys WHERE id = $2::uuid AND user_id = $1::uuid RETURNING "+passkeyCols, userID, id))
}

// Ceremony kinds of webauthn_challenges.
const (
	CeremonyRegister     = "register"
	CeremonyLogin        = "login"
	CeremonySecondFactor = "second_factor"
	CeremonyReauth       = "reauthenticate"
)

// Ceremony is the server side of a WebAuthn ceremony between begin and finish.
type Ceremony struct {
	Kind    string
	UserID  string // "" for a discoverable login
	BoundTo string // the session id or login challenge it was begun for
	Data    []byte // go-webauthn's SessionData, JSON
}

// InsertCeremony stores a ceremony under the SHA-256 of its challenge.
func InsertCeremony(ctx context.Context, q DBTX, challengeHash []byte, c Ceremony, ttl time.Duration) error {
	var uid *string
	if c.UserID != "" {
		uid = &c.UserID
	}
	_, err := q.Exec(ctx, `INSERT INTO webauthn_challenges (challenge_hash, kind, user_id, bound_to, data, expires_at)
		VALUES ($1, $2, $3::uuid, $4, $5, now() + make_interval(secs => $6::float8))`, challengeHash, c.Kind, uid, c.BoundTo, string(c.Data), ttl.Seconds())
	return err
}

// TakeCeremony deletes the ceremony of a challenge and returns it if it is
// of kind and unexpired: whatever the outcome, a challenge is answered at
// most once. ErrNotFound otherwise.
func TakeCeremony(ctx context.Context, q DBTX, challengeHash []byte, kind string) (Ceremony, error) {
	var c Ceremony
	var uid *string
	var live bool
	err := q.QueryRow(ctx, `DELETE FROM webauthn_challenges WHERE challenge_hash = $1
		RETURNING kind, user_id::text, bound_to, data::text, expires_at > now()`, challengeHash).
		Scan(&c.Kind, &uid, &c.BoundTo, &c.Data, &live)
	if err != nil {
		return c, notFound(err)
	}
	if !live || c.Kind != kind {
		return Ceremony{}, ErrNotFound
	}
	if uid != nil {
		c.UserID = *uid
	}
	return c, nil
}

// SweepCeremonies deletes up to batch expired ceremonies.
func SweepCeremonies(ctx context.Context, q DBTX, batch int) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM webauthn_challenges WHERE challenge_hash IN (
		SELECT challenge_hash FROM webauthn_challenges WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED)`, batch)
	return tag.RowsAffected(), err
}
