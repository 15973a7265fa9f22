package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// DrillCanaryHash returns the restore drills' canary hash (migration 0006),
// ok false when there is none yet.
func DrillCanaryHash(ctx context.Context, q DBTX) (hash string, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT password_hash FROM drill_canary WHERE id = 1`).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return hash, true, nil
}

// SetDrillCanaryHash writes the canary hash (insert or replace).
func SetDrillCanaryHash(ctx context.Context, q DBTX, hash string) error {
	_, err := q.Exec(ctx, `INSERT INTO drill_canary (id, password_hash) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()`, hash)
	return err
}
