package backup

// `authserver backup verify`: the restore drill. It restores the newest
// PostgreSQL backup into a scratch database on the same server, checks the
// rows against the backup's manifest, runs the migrations, checks the canary
// hash against the stack's pepper, and drops the scratch database, always.
// See DESIGN.md ("Restore drills") and docs/backup-and-restore.md.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/leanauth/authstack/authserver/backup/result"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/store"
)

// ScratchPrefix starts the name of every scratch database a drill creates:
// authstack_drill_<unix seconds>_<random>.
const ScratchPrefix = "authstack_drill_"

// ScratchStaleAfter: a scratch database older than this is left over from a
// drill that was killed before it could drop it (SIGKILL, node loss); the
// next drill on the same server drops it. Longer than the drill Job's
// activeDeadlineSeconds (controllers/resources/drill.go), so a running
// drill's database is never taken.
const ScratchStaleAfter = 4 * time.Hour

// VerifyResult describes a drill.
type VerifyResult struct {
	Object     string
	BackupTime time.Time     // from the object's name
	Restore    time.Duration // download, decrypt, pg_restore
	Duration   time.Duration // the whole drill
	Tables     int
	Rows       int64
	// Skipped and Unsigned as in RestoreResult.
	Skipped  []string
	Unsigned bool
}

// DrillError is a failed drill: Reason is one of result.Reason*.
type DrillError struct {
	Reason string
	Err    error
}

func (e *DrillError) Error() string { return e.Err.Error() }
func (e *DrillError) Unwrap() error { return e.Err }

func drillErr(reason string, err error) error { return &DrillError{Reason: reason, Err: err} }

// ReasonOf is the drill reason of err (nil: DrillSucceeded).
func ReasonOf(err error) string {
	var de *DrillError
	switch {
	case err == nil:
		return result.ReasonDrillSucceeded
	case errors.As(err, &de):
		return de.Reason
	}
	return result.ReasonDrillFailed
}

// Verify runs one restore drill of the newest PostgreSQL backup. cfg needs
// DatabaseURL (a role that may CREATE DATABASE on that server), the private
// key and the S3 settings; peppers are the stack's (current first).
func Verify(ctx context.Context, cfg Config, peppers []config.Pepper) (res VerifyResult, err error) {
	start := timeNow()
	defer func() { res.Duration = timeNow().Sub(start) }()
	if cfg.DatabaseURL == "" {
		return res, &UsageError{Msg: "set DATABASE_URL (or DATABASE_URL_FILE): the drill creates its scratch database on that server"}
	}
	if len(peppers) == 0 {
		return res, &UsageError{Msg: "set AUTH_PEPPER_FILE: the drill checks the canary hash with the stack's pepper"}
	}
	hasher, err := password.New(password.CanaryParams, peppers, 1, -1, time.Minute)
	if err != nil {
		return res, err
	}
	bin, err := exec.LookPath(cfg.PgRestore)
	if err != nil {
		return res, fmt.Errorf("finding pg_restore: %w; run the drill from the authserver image (or set PG_RESTORE)", err)
	}
	keys, err := loadPrivateKeys(cfg.PrivateKeyFile, cfg.PassphraseFile)
	if err != nil {
		return res, &UsageError{Msg: err.Error()}
	}
	tr, err := trustOf(cfg)
	if err != nil {
		return res, err
	}
	st, err := newStore(cfg.S3)
	if err != nil {
		return res, err
	}
	// The newest backup signed by the stack's key, authenticated before anything
	// of it (its manifest included) is decrypted.
	newest, skipped, err := st.newestExpected(ctx, KindPostgres, cfg.ExpectNewest, tr)
	res.Skipped = skipped
	var nb *noBackupError
	var nm *NewestMissingError
	switch {
	case errors.As(err, &nm):
		return res, drillErr(result.ReasonNewestBackupMissing, err)
	case errors.As(err, &nb):
		return res, drillErr(result.ReasonNoBackup, fmt.Errorf("%w: nothing to verify", err))
	case notAuthenticReason(err) != "":
		return res, drillErr(notAuthenticReason(err), err)
	case err != nil:
		return res, err
	}
	res.Object, res.BackupTime, res.Unsigned = newest.key, newest.time, newest.signed == nil
	manifest, err := openManifest(newest.meta, keys)
	if err != nil {
		return res, drillErr(result.ReasonBackupUnreadable, fmt.Errorf("backup %s: %w", newest.key, err))
	}

	scratch, drop, err := createScratch(ctx, cfg.DatabaseURL, start)
	if err != nil {
		return res, err
	}
	defer func() {
		// Always, also when ctx is cancelled (SIGTERM at the Job's deadline).
		if derr := drop(); derr != nil && err == nil {
			err = derr
		}
	}()

	restoreStart := timeNow()
	var size, raw int64
	path, err := fetchDecrypted(ctx, st, newest, keys, "", &size, &raw)
	if r := notAuthenticReason(err); r != "" {
		return res, drillErr(r, err)
	}
	if err != nil {
		return res, drillErr(result.ReasonBackupUnreadable, err)
	}
	defer os.Remove(path)
	if err := pgRestore(ctx, bin, path, newest.key, scratch, false, false); err != nil {
		var na *notArchiveError
		if errors.As(err, &na) {
			return res, drillErr(result.ReasonBackupUnreadable, err)
		}
		return res, drillErr(result.ReasonRestoreFailed, err)
	}
	res.Restore = timeNow().Sub(restoreStart)

	conn, err := pgx.Connect(ctx, scratch)
	if err != nil {
		return res, fmt.Errorf("connecting to the scratch database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Counts before the migrations, which may change rows.
	got, err := countRows(ctx, conn)
	if err != nil {
		return res, drillErr(result.ReasonRestoreFailed, fmt.Errorf("counting the restored rows: %w", err))
	}
	if diff := rowDiff(manifest.Rows, got); diff != "" {
		return res, drillErr(result.ReasonRowCountMismatch, fmt.Errorf("backup %s restored with other row counts than were dumped (%s): the archive does not hold what was backed up; try an older backup and check the backup logs", newest.key, diff))
	}
	for _, n := range got {
		res.Rows += n
	}
	res.Tables = len(got)
	if _, err := store.Migrate(ctx, scratch); err != nil {
		return res, drillErr(result.ReasonMigrationFailed, fmt.Errorf("migrating the restored backup %s to this release's schema: %w; a restore of it would stop the authserver's migrate init container the same way", newest.key, err))
	}
	if err := checkCanary(ctx, conn, hasher, peppers); err != nil {
		return res, drillErr(result.ReasonCanaryMismatch, fmt.Errorf("backup %s: %w", newest.key, err))
	}
	return res, nil
}

// checkCanary verifies the restored canary hash (store migration 0006) with
// the canary password of the pepper it names.
func checkCanary(ctx context.Context, conn *pgx.Conn, hasher *password.Hasher, peppers []config.Pepper) error {
	hash, ok, err := store.DrillCanaryHash(ctx, conn)
	if err != nil {
		return fmt.Errorf("reading the canary: %w", err)
	}
	if !ok {
		return errors.New("it holds no restore-drill canary (authserver migrate writes it when the authserver starts; a backup taken before this release has none): take a new backup")
	}
	var lastErr error
	for _, p := range peppers {
		r, err := hasher.Verify(ctx, password.CanaryPassword(p), hash)
		if err == nil && r.OK {
			return nil
		}
		lastErr = err
	}
	if errors.Is(lastErr, password.ErrUnknownPepper) {
		return fmt.Errorf("its canary hash uses pepper id %q, which is not among the stack's peppers (AUTH_PEPPER_FILE, AUTH_OLD_PEPPERS): restored, no password in it would verify; restore the pepper Secret this data needs (docs/backup-and-restore.md)", pepperIDOf(hash))
	}
	return errors.New("its canary hash does not verify with the stack's pepper: restored, passwords would not verify; check the pepper Secret (docs/backup-and-restore.md)")
}

// pepperIDOf is the key id of a PHC string ($argon2id$v=19$m=..,t=..,p=..,keyid=ID$...), "" if none.
func pepperIDOf(phc string) string {
	for _, part := range strings.Split(phc, "$") {
		for _, kv := range strings.Split(part, ",") {
			if id, ok := strings.CutPrefix(kv, "keyid="); ok {
				return id
			}
		}
	}
	return ""
}

// rowDiff describes where got differs from want ("" when equal), at most 5 tables.
func rowDiff(want, got map[string]int64) string {
	var diffs []string
	for t, n := range want {
		if g, ok := got[t]; !ok {
			diffs = append(diffs, t+": missing, dumped "+strconv.FormatInt(n, 10))
		} else if g != n {
			diffs = append(diffs, fmt.Sprintf("%s: %d restored, %d dumped", t, g, n))
		}
	}
	for t, n := range got {
		if _, ok := want[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %d restored, not in the dump's counts", t, n))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}

// createScratch creates an empty scratch database on adminURL's server, owned
// by adminURL's role (which needs CREATEDB), after dropping stale ones left by
// killed drills. It returns its URL and the function that drops it.
func createScratch(ctx context.Context, adminURL string, now time.Time) (string, func() error, error) {
	conn, err := store.ConnectURL(ctx, adminURL, nil) // the drill's first connection: waits for the database
	if err != nil {
		return "", nil, drillErr(result.ReasonScratchDatabaseUnavailable, fmt.Errorf("connecting to %s: %w; check DATABASE_URL", redactedDB(adminURL), err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := dropStale(ctx, conn, now); err != nil {
		return "", nil, err
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	name := ScratchPrefix + strconv.FormatInt(now.Unix(), 10) + "_" + hex.EncodeToString(suffix[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			return "", nil, drillErr(result.ReasonScratchDatabaseUnavailable, fmt.Errorf("the role in DATABASE_URL may not create the drill's scratch database on %s (%s): grant it with ALTER ROLE <role> CREATEDB, or run drills against a server where it may", redactedDB(adminURL), pe.Message))
		}
		return "", nil, drillErr(result.ReasonScratchDatabaseUnavailable, fmt.Errorf("creating the scratch database on %s: %w", redactedDB(adminURL), err))
	}
	u, _ := url.Parse(adminURL) // parsed by store.ConnectURL above
	u.Path = "/" + name
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return fmt.Errorf("dropping the scratch database %s: %w; the next drill drops it", name, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping the scratch database %s: %w; the next drill drops it", name, err)
		}
		return nil
	}
	return u.String(), drop, nil
}

// scratchName is exactly the name createScratch gives a scratch database.
var scratchName = regexp.MustCompile(`^` + ScratchPrefix + `(\d+)_[0-9a-f]{8}$`)

// dropStale drops the scratch databases older than ScratchStaleAfter (by the
// time in their name) that the role may drop (its own).
func dropStale(ctx context.Context, conn *pgx.Conn, now time.Time) error {
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'authstack\_drill\_%' AND pg_get_userbyid(datdba) = current_user`)
	if err != nil {
		return fmt.Errorf("listing stale scratch databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing stale scratch databases: %w", err)
	}
	for _, name := range names {
		m := scratchName.FindStringSubmatch(name)
		if m == nil {
			continue // not a name createScratch makes: someone's database
		}
		sec, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || now.Sub(time.Unix(sec, 0)) < ScratchStaleAfter {
			continue
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping the stale scratch database %s: %w", name, err)
		}
	}
	return nil
}
