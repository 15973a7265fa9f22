package backup

// What a restore does beyond pg_restore, for the operator's declared restore
// (spec.bootstrap.fromBackup; docs/backup-and-restore.md, "Declare a restore"):
// the pepper check before anything is written, the marker that makes a re-run
// harmless, and the sessions that must not outlive the restore.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// dumpKeyID finds the pepper id of an argon2id PHC string in pg_restore's COPY
// output (tab-separated columns; authserver/store/peppers.go reads the same field).
var dumpKeyID = regexp.MustCompile(`\$argon2id\$v=19\$[^$\t]*keyid=([^$,\t]+)`)

// checkDumpPeppers reads the password hashes of the users table in the archive
// at path (pg_restore --data-only, no database needed) and fails with
// *store.PepperMismatchError when users have hashes and none uses one of
// configured: the same rule as the authserver's migrate check, applied before
// anything is restored.
func checkDumpPeppers(ctx context.Context, pgRestore, path string, configured []string, source string) error {
	cmd := exec.CommandContext(ctx, pgRestore, "--data-only", "--table=users", "--file=-", path)
	var stderr tailBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("reading the password hashes of the backup: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("reading the password hashes of the backup: %w", err)
	}
	var inUse []string
	match := false
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		for _, m := range dumpKeyID.FindAllSubmatch(sc.Bytes(), -1) {
			id := string(m[1])
			if slices.Contains(configured, id) {
				match = true
			} else if !slices.Contains(inUse, id) && len(inUse) < 10 {
				inUse = append(inUse, id)
			}
		}
	}
	scanErr := sc.Err()
	if err := cmd.Wait(); err != nil || scanErr != nil {
		return &notArchiveError{fmt.Errorf("reading the password hashes of the backup: pg_restore cannot read it (%s); it is not a pg_dump custom archive, try an older backup",
			firstNonEmpty(stderr.String(), errors.Join(err, scanErr).Error()))}
	}
	if match || len(inUse) == 0 {
		return nil
	}
	slices.Sort(inUse)
	return &store.PepperMismatchError{Configured: slices.Clone(configured), InUse: inUse, Secret: source}
}

// markerTable records the last restore into a database. It is created by the
// restore, not by a migration; it is in later backups, but a restore leaves it
// out (pgRestore), so a marker is always this database's own.
const markerTable = "authstack_restore"

// restoreMarker returns the object key recorded by a previous restore into the
// database at url, or "" when there is none.
func restoreMarker(ctx context.Context, url string) (string, error) {
	conn, err := connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var obj string
	err = conn.QueryRow(ctx, `SELECT object FROM `+markerTable+` ORDER BY restored_at DESC LIMIT 1`).Scan(&obj)
	var pgErr interface{ SQLState() string }
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pgErr) && pgErr.SQLState() == "42P01": // undefined_table
		return "", nil
	case err != nil:
		return "", err
	}
	return obj, nil
}

// afterRestore runs in one transaction right after pg_restore: it revokes every
// restored session when asked and, with mark (--once), records the marker that
// makes a declared restore's re-run report "already restored" instead of
// refusing its own data.
func afterRestore(ctx context.Context, url, object string, revoke, mark bool) (int64, error) {
	if !revoke && !mark {
		return 0, nil
	}
	conn, err := connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("connecting to record the restore: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var revoked int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if revoke {
			if revoked, err = store.DeleteAllSessions(ctx, tx); err != nil {
				return fmt.Errorf("revoking the restored sessions: %w", err)
			}
		}
		if !mark {
			return nil
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+markerTable+` (object text NOT NULL, restored_at timestamptz NOT NULL DEFAULT now());
			DELETE FROM `+markerTable)
		if err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO `+markerTable+` (object) VALUES ($1)`, object)
		}
		if err != nil {
			return fmt.Errorf("recording the restore in %s: %w", markerTable, err)
		}
		return nil
	})
	return revoked, err
}

func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("the URL does not parse (value not shown)")
	}
	cfg.ConnectTimeout = 15 * time.Second
	return store.Connect(ctx, cfg, nil) // waits for the database (a new Job pod)
}

// flushSessionCache empties the session cache of the Redis at rawURL (nothing
// to do without one). A URL with addr= is a Redis Cluster (go-redis's cluster
// URL form, as for the authserver).
func flushSessionCache(ctx context.Context, rawURL string) (int, error) {
	if rawURL == "" {
		return 0, nil
	}
	var rdb redis.UniversalClient
	if strings.Contains(rawURL, "addr=") {
		opt, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return 0, errors.New("REDIS_URL: not a valid Redis Cluster URL (value not shown)")
		}
		rdb = redis.NewClusterClient(opt)
	} else {
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			return 0, errors.New("REDIS_URL: not a valid redis:// URL (value not shown)")
		}
		rdb = redis.NewClient(opt)
	}
	defer rdb.Close()
	n, err := session.FlushCache(ctx, rdb)
	if err != nil {
		return n, fmt.Errorf("%w; the data is restored, but sessions cached before it may still be served: "+
			"delete the keys authstack:session:* from Redis (a declared restore's Job retries this itself)", err)
	}
	return n, nil
}
