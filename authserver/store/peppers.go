package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/leanauth/authstack/authserver/pepperusage"
)

// keyIDPattern extracts the pepper id from a PHC string
// ($argon2id$v=19$m=..,t=..,p=..,keyid=<id>$salt$hash; authserver/password).
const keyIDPattern = `^\$argon2id\$v=19\$[^$]*keyid=([^$,]+)`

// PepperMismatchError says users exist but none of their password hashes was made
// with a configured pepper: the database holds another stack's data (a restore into a
// stack that generated a new pepper), and serving would fail every login.
type PepperMismatchError struct {
	Configured []string // ids of the configured peppers
	InUse      []string // ids the stored hashes use (at most 10)
	// Secret names where the configured pepper comes from; may be empty.
	Secret string
}

func (e *PepperMismatchError) Error() string {
	where := "the configured pepper"
	if e.Secret != "" {
		where = fmt.Sprintf("the pepper in Secret %q", e.Secret)
	}
	restore := "restore the pepper this database was created with"
	if e.Secret != "" {
		restore = fmt.Sprintf("restore Secret %q from the backup of the stack this data comes from", e.Secret)
	}
	return fmt.Sprintf("pepper mismatch: the stored password hashes use pepper id(s) %s, but %s has id(s) %s: "+
		"every login would fail. Do not start the authserver with this pepper: %s (see docs/backup-and-restore.md)",
		strings.Join(e.InUse, ", "), where, strings.Join(e.Configured, ", "), restore)
}

// CheckPeppers connects to directURL and fails with *PepperMismatchError when users
// exist and none of their hashes uses one of the configured pepper ids. An empty
// database (a new stack) passes. The data itself says which peppers it needs: no
// record outside it (such as the operator's status) has to survive a restore.
func CheckPeppers(ctx context.Context, directURL string, configured []string, secret string) error {
	conn, err := ConnectURL(ctx, directURL, nil)
	if err != nil {
		return fmt.Errorf("connecting for the pepper check: %w", err)
	}
	defer conn.Close(context.Background())
	// EXISTS stops at the first matching row: cheap on a healthy database.
	var match bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE substring(password_hash FROM $1::text) = ANY($2::text[]))`,
		keyIDPattern, configured).Scan(&match)
	if err != nil {
		return fmt.Errorf("reading the pepper ids of the stored password hashes: %w", err)
	}
	if match {
		return nil
	}
	rows, err := conn.Query(ctx, `SELECT DISTINCT substring(password_hash FROM $1::text) AS id FROM users
		WHERE substring(password_hash FROM $1::text) IS NOT NULL ORDER BY id LIMIT 10`, keyIDPattern)
	if err != nil {
		return fmt.Errorf("reading the pepper ids of the stored password hashes: %w", err)
	}
	inUse, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading the pepper ids of the stored password hashes: %w", err)
	}
	if len(inUse) == 0 {
		return nil
	}
	return &PepperMismatchError{Configured: slices.Clone(configured), InUse: inUse, Secret: secret}
}

// CountPeppers counts, per pepper id, the stored password hashes (of users, and the
// pending ones of unused, unexpired verification tokens, which become a user's on
// verification) and the TOTP secrets: what still needs each pepper. At most
// pepperusage.MaxIDs ids per kind, the most used first.
func CountPeppers(ctx context.Context, q DBTX) (pepperusage.Usage, error) {
	u := pepperusage.Usage{PasswordHashes: map[string]int64{}, TOTPSecrets: map[string]int64{}}
	rows, err := q.Query(ctx, `SELECT substring(h FROM $1::text) AS id, count(*) FROM (
			SELECT password_hash AS h FROM users
			UNION ALL
			SELECT password_hash FROM email_tokens WHERE password_hash IS NOT NULL AND used_at IS NULL AND expires_at > now()
		) hashes GROUP BY id ORDER BY count(*) DESC LIMIT $2`, keyIDPattern, pepperusage.MaxIDs+1)
	if err != nil {
		return u, fmt.Errorf("counting the password hashes per pepper: %w", err)
	}
	if err := collectCounts(rows, u.PasswordHashes, &u.Other); err != nil {
		return u, fmt.Errorf("counting the password hashes per pepper: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT key_id, count(*) FROM user_totp GROUP BY key_id ORDER BY count(*) DESC LIMIT $1`, pepperusage.MaxIDs)
	if err != nil {
		return u, fmt.Errorf("counting the TOTP secrets per pepper: %w", err)
	}
	if err := collectCounts(rows, u.TOTPSecrets, nil); err != nil {
		return u, fmt.Errorf("counting the TOTP secrets per pepper: %w", err)
	}
	return u, nil
}

// collectCounts reads (id, count) rows; a NULL id (no keyid in the hash) adds to other.
func collectCounts(rows pgx.Rows, into map[string]int64, other *int64) error {
	defer rows.Close()
	for rows.Next() {
		var id *string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		switch {
		case id == nil && other != nil:
			*other += n
		case id != nil && len(into) < pepperusage.MaxIDs:
			into[*id] = n
		}
	}
	return rows.Err()
}
