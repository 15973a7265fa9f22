package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"strings"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// pgConn splits a PostgreSQL URL into a URL without password (passed to
// pg_dump/pg_restore as --dbname) and the password (passed as PGPASSWORD),
// so that the password never appears in the process list.
func pgConn(raw, setting string) (dbname, password string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", "", fmt.Errorf("%s is not a postgres:// URL (value not shown)", setting)
	}
	if u.User != nil {
		password, _ = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	return u.String(), password, nil
}

// redactedDB names a database for messages: host and database, no user info.
func redactedDB(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Host + u.Path
}

// pgEnv is the environment for pg_dump/pg_restore: the current one (so that
// PGSSLROOTCERT and the like still work) without the secrets the child does
// not need, plus PGPASSWORD. Settings in the URL win over PG* variables.
func pgEnv(password string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PGPASSWORD", "DATABASE_URL", "REDIS_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PGCONNECT_TIMEOUT=15", "PGAPPNAME=authserver-backup")
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	return env
}

// tailBuffer keeps the last 4 KiB written (a tool's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

// String returns the tool's own message lines ("pg_dump: ...",
// "pg_restore: ..."). Continuation lines (DETAIL, CONTEXT, "Command was:")
// are dropped: they can quote row data (emails, password hashes), which must
// not reach logs or status.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keep []string
	for _, line := range strings.Split(string(t.buf), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "pg_dump:") && !strings.HasPrefix(line, "pg_restore:") {
			continue
		}
		for _, cut := range []string{"DETAIL:", "CONTEXT:", "Command was:"} {
			if i := strings.Index(line, cut); i >= 0 {
				line = strings.TrimSpace(line[:i])
			}
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "; ")
}

// pgDumpProducer runs pg_dump -Fc -Z0 (uncompressed custom format: gzip
// compresses it once, after) with its output streamed to the writer. It dumps
// the exported snapshot snapshot() names (the one the manifest's counts saw).
func pgDumpProducer(cfg Config, snapshot func() string) (producer, error) {
	dbname, pw, err := pgConn(cfg.DatabaseURL, "DATABASE_URL")
	if err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(cfg.PgDump)
	if err != nil {
		return nil, fmt.Errorf("finding pg_dump: %w; the image must ship pg_dump of the newest supported PostgreSQL major (or set PG_DUMP)", err)
	}
	return func(ctx context.Context, w io.Writer) error {
		var stderr tailBuffer
		cmd := exec.CommandContext(ctx, bin, "--format=custom", "--compress=0", "--no-password", "--snapshot="+snapshot(), "--dbname="+dbname)
		cmd.Env = pgEnv(pw)
		cmd.Stdout = w
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			msg := stderr.String()
			hint := "check DATABASE_URL (the direct URL, not the pooler), that the database is up, and that the role may read every table"
			if strings.Contains(msg, "server version mismatch") {
				hint = "the server is newer than this pg_dump: use an authserver image whose pg_dump is at least the server's major version"
			}
			if msg == "" {
				msg = err.Error()
			}
			return fmt.Errorf("pg_dump of %s failed: %s; %s", redactedDB(cfg.DatabaseURL), msg, hint)
		}
		return nil
	}, nil
}

// RestoreOptions are the flags of `authserver restore postgres`.
type RestoreOptions struct {
	Object    string // key; empty = newest backup
	TargetURL string // empty = DATABASE_URL
	Force     bool   // restore into a non-empty database (pg_restore --clean --if-exists)
	WorkDir   string // where the decrypted dump is kept while restoring; default os.TempDir()

	// Once makes a re-run harmless (the operator's declared restore): a non-empty
	// target holding the marker a restore writes (table authstack_restore) is
	// reported as already restored instead of refused.
	Once bool
	// RevokeSessions deletes every restored session after restoring, recording
	// their revocations (store.DeleteAllSessions): sessions of the backup may have
	// been revoked after it was taken.
	RevokeSessions bool
	// Peppers are the ids of the stack's peppers. When set, a backup whose password
	// hashes use none of them is refused before anything is restored
	// (*store.PepperMismatchError, naming PepperSource).
	Peppers      []string
	PepperSource string
	// RedisURL, when set: the session cache there is flushed after restoring
	// (session.FlushCache), so that nothing cached before the restore vouches for a session.
	RedisURL string
}

// RestoreResult describes a finished restore.
type RestoreResult struct {
	Object   string
	Size     int64 // bytes fetched
	RawSize  int64 // bytes of the decrypted dump
	Duration time.Duration
	// AlreadyRestored: with Once, the target held a restore's marker; nothing was done
	// but flushing the session cache. Object is the marker's.
	AlreadyRestored bool
	SessionsRevoked int64 // restored sessions deleted (RevokeSessions)
	CacheFlushed    int   // session cache keys deleted (RedisURL)
	// Skipped are newer objects that resolving the newest backup stepped over:
	// not signed by the verify key, or altered (a warning: someone wrote the bucket).
	Skipped []string
	// Unsigned: the object had no signature and was accepted by BACKUP_TRUST_UNSIGNED_BEFORE.
	Unsigned bool
}

// ErrTargetNotEmpty is returned when the target has tables and Force is off.
var ErrTargetNotEmpty = errors.New("target database is not empty")

// RestorePostgres fetches, decrypts, verifies and restores a backup.
func RestorePostgres(ctx context.Context, cfg Config, opt RestoreOptions) (RestoreResult, error) {
	start := timeNow()
	var res RestoreResult
	target := opt.TargetURL
	if target == "" {
		target = cfg.DatabaseURL
	}
	if target == "" {
		return res, &UsageError{Msg: "no target database: pass --target-url or set DATABASE_URL"}
	}
	if _, _, err := pgConn(target, "the target URL"); err != nil {
		return res, err
	}
	bin, err := exec.LookPath(cfg.PgRestore)
	if err != nil {
		return res, fmt.Errorf("finding pg_restore: %w; run the restore from the authserver image (or set PG_RESTORE)", err)
	}
	keys, err := loadPrivateKeys(cfg.PrivateKeyFile, cfg.PassphraseFile)
	if err != nil {
		return res, err
	}
	tr, err := trustOf(cfg)
	if err != nil {
		return res, err
	}
	// Refuse a non-empty target before downloading anything.
	n, err := countRelations(ctx, target)
	if err != nil {
		return res, fmt.Errorf("connecting to the target database %s: %w; check --target-url/DATABASE_URL and that the database exists (createdb it first)", redactedDB(target), err)
	}
	if n > 0 && opt.Once {
		obj, err := restoreMarker(ctx, target)
		if err != nil {
			return res, fmt.Errorf("reading the restore marker of %s: %w", redactedDB(target), err)
		}
		if obj != "" {
			res.Object, res.AlreadyRestored = obj, true
			res.CacheFlushed, err = flushSessionCache(ctx, opt.RedisURL)
			res.Duration = timeNow().Sub(start)
			return res, err
		}
	}
	if n > 0 && !opt.Force {
		return res, fmt.Errorf("%w: %s has %d tables/sequences/views; restore into a new empty database, or pass --force to replace the objects in the backup (pg_restore --clean)", ErrTargetNotEmpty, redactedDB(target), n)
	}
	st, err := newStore(cfg.S3)
	if err != nil {
		return res, err
	}
	res.Object = opt.Object // a refusal names the object asked for
	a, skipped, err := resolve(ctx, st, KindPostgres, opt.Object, cfg.ExpectNewest, tr)
	res.Skipped = skipped
	if err != nil {
		return res, err
	}
	obj := a.key
	res.Object, res.Unsigned = obj, a.signed == nil
	path, err := fetchDecrypted(ctx, st, a, keys, opt.WorkDir, &res.Size, &res.RawSize)
	if err != nil {
		return res, err
	}
	defer os.Remove(path)

	if len(opt.Peppers) > 0 {
		if err := checkDumpPeppers(ctx, bin, path, opt.Peppers, opt.PepperSource); err != nil {
			return res, fmt.Errorf("backup %s, nothing restored: %w", obj, err)
		}
	}
	if err := pgRestore(ctx, bin, path, obj, target, opt.Force && n > 0, true); err != nil {
		return res, err
	}
	if res.SessionsRevoked, err = afterRestore(ctx, target, obj, opt.RevokeSessions, opt.Once); err != nil {
		return res, fmt.Errorf("restored %s into %s, then %w", obj, redactedDB(target), err)
	}
	if res.CacheFlushed, err = flushSessionCache(ctx, opt.RedisURL); err != nil {
		return res, fmt.Errorf("restored %s into %s, then %w", obj, redactedDB(target), err)
	}
	res.Duration = timeNow().Sub(start)
	return res, nil
}

// pgRestore checks that path is a pg_dump archive (pg_restore --list) and
// restores it into target in one transaction, as the object's owner-less
// copy; clean replaces the objects of the backup first; withoutMarker leaves
// out the restore marker table (a drill restores all, for the row counts).
func pgRestore(ctx context.Context, bin, path, obj, target string, clean, withoutMarker bool) error {
	dbname, pw, err := pgConn(target, "the target URL")
	if err != nil {
		return err
	}
	var stderr tailBuffer
	// Verify: pg_restore must read the archive's table of contents.
	var toc bytes.Buffer
	list := exec.CommandContext(ctx, bin, "--list", path)
	list.Stderr = &stderr
	list.Stdout = &toc
	if err := list.Run(); err != nil {
		return &notArchiveError{fmt.Errorf("verifying %s: pg_restore cannot read it (%s); it is not a pg_dump custom archive, try an older backup", obj, firstNonEmpty(stderr.String(), err.Error()))}
	}
	args := []string{"--no-password", "--dbname=" + dbname, "--no-owner", "--exit-on-error", "--single-transaction"}
	if withoutMarker {
		// The backed-up database's restore marker stays out: only afterRestore
		// writes one, so a --once retry after a restore that died before
		// revoking the sessions never takes the backup's marker for its own.
		listFile := path + ".list"
		if err := os.WriteFile(listFile, markerTOC.ReplaceAll(toc.Bytes(), []byte(";$0")), 0o600); err != nil {
			return fmt.Errorf("writing the restore list of %s: %w", obj, err)
		}
		defer os.Remove(listFile)
		args = append(args, "--use-list="+listFile)
	}
	if clean {
		args = append(args, "--clean", "--if-exists")
	}
	args = append(args, path)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = pgEnv(pw)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := firstNonEmpty(stderr.String(), err.Error())
		hint := "check the target role may create the objects, and that pg_restore is at least the backup's pg_dump version"
		switch {
		case strings.Contains(msg, "read-only transaction"):
			hint = "the target database is read-only (default_transaction_read_only, runbook step 1): add options=-c%20default_transaction_read_only%3Doff to --target-url"
		case clean && strings.Contains(msg, "because other objects depend on it"):
			// --clean drops only the archive's objects; tables a later
			// migration added still refer to them.
			hint = "the target's schema is newer than the backup's (tables a later release added refer to the backup's tables): restore into a new empty database instead, whose migrate step brings it up to date, and point the stack at it"
		}
		return fmt.Errorf("pg_restore of %s into %s failed (nothing was committed: single transaction): %s; %s", obj, redactedDB(target), msg, hint)
	}
	return nil
}

// markerTOC matches the table of contents entries (pg_restore --list) of the
// restore marker table (declared.go), which pgRestore leaves out.
var markerTOC = regexp.MustCompile(`(?m)^\d+; \d+ \d+ [A-Z ]+ \S+ ` + markerTable + ` .*$`)

// notArchiveError: the decrypted backup is not a pg_dump archive.
type notArchiveError struct{ error }

func (e *notArchiveError) Unwrap() error { return e.error }

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// resolve authenticates the named backup of kind, or finds the newest
// authentic one, no older than expect (skipped: the newer objects it stepped over).
func resolve(ctx context.Context, st *bucket, kind, key, expect string, tr Trust) (a *authentic, skipped []string, err error) {
	if key == "" {
		return st.newestExpected(ctx, kind, expect, tr)
	}
	a, err = st.authenticate(ctx, kind, key, tr)
	return a, nil, err
}

// fetchDecrypted downloads an authenticated backup, checks its bytes against
// its signature, and only then decrypts and decompresses it (at most
// a.rawLimit bytes) into a private file in dir; it returns that file's path.
func fetchDecrypted(ctx context.Context, st *bucket, a *authentic, keys openpgp.EntityList, dir string, size, raw *int64) (string, error) {
	enc, err := st.fetchVerified(ctx, a, dir)
	if err != nil {
		return "", err
	}
	defer os.Remove(enc)
	*size = a.size
	src, err := os.Open(enc)
	if err != nil {
		return "", fmt.Errorf("reading the work file: %w", err)
	}
	defer src.Close()
	f, err := os.CreateTemp(dir, "authserver-restore-*")
	if err != nil {
		return "", fmt.Errorf("creating a work file: %w; set TMPDIR to a writable directory with room for the decrypted dump", err)
	}
	m, err := decode(f, src, keys, a.rawLimit)
	*raw = m
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing the work file: %w", cerr)
	}
	if err != nil {
		os.Remove(f.Name())
		if errors.Is(err, errTooLarge) {
			return "", &TooLargeError{Object: a.key, Limit: a.rawLimit, Signed: a.signed != nil}
		}
		return "", fmt.Errorf("backup %s: %w", a.key, err)
	}
	if a.signed != nil && m != a.signed.RawSize {
		os.Remove(f.Name())
		return "", fmt.Errorf("backup %s decompressed to %d bytes, its signature states %d: the backup is damaged", a.key, m, a.signed.RawSize)
	}
	return f.Name(), nil
}

// RestoreRedis fetches and decrypts a Redis backup into the RDB file out.
func RestoreRedis(ctx context.Context, cfg Config, object, out string) (RestoreResult, error) {
	start := timeNow()
	var res RestoreResult
	if out == "" {
		return res, &UsageError{Msg: "pass --out PATH: where to write dump.rdb"}
	}
	keys, err := loadPrivateKeys(cfg.PrivateKeyFile, cfg.PassphraseFile)
	if err != nil {
		return res, err
	}
	tr, err := trustOf(cfg)
	if err != nil {
		return res, err
	}
	st, err := newStore(cfg.S3)
	if err != nil {
		return res, err
	}
	a, skipped, err := resolve(ctx, st, KindRedis, object, cfg.ExpectNewest, tr)
	res.Skipped = skipped
	if err != nil {
		return res, err
	}
	obj := a.key
	res.Unsigned = a.signed == nil
	path, err := fetchDecrypted(ctx, st, a, keys, filepath.Dir(out), &res.Size, &res.RawSize)
	if err != nil {
		return res, err
	}
	head := make([]byte, 5)
	f, err := os.Open(path)
	if err == nil {
		_, err = io.ReadFull(f, head)
		f.Close()
	}
	if err != nil || !bytes.Equal(head, []byte("REDIS")) {
		os.Remove(path)
		return res, fmt.Errorf("backup %s does not hold an RDB file (no REDIS header): try an older backup", obj)
	}
	if err := os.Rename(path, out); err != nil {
		os.Remove(path)
		return res, fmt.Errorf("moving the RDB to %s: %w", out, err)
	}
	res.Object = obj
	res.Duration = timeNow().Sub(start)
	return res, nil
}

// countRelations counts the user tables, sequences and views in a database.
func countRelations(ctx context.Context, url string) (int, error) {
	conn, err := connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
		WHERE c.relkind IN ('r','p','S','v','m','f')
		  AND ns.nspname NOT IN ('pg_catalog','information_schema') AND ns.nspname NOT LIKE 'pg_toast%'
		  AND ns.nspname NOT LIKE 'pg_temp%'`).Scan(&n)
	return n, err
}
