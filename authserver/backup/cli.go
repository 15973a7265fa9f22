package backup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/leanauth/authstack/authserver/backup/result"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/observe"
	"github.com/leanauth/authstack/authserver/store"
)

// Usage is the help text of the backup and restore subcommands.
const Usage = `usage:
  authserver backup postgres     pg_dump -Fc | gzip | OpenPGP | S3 multipart upload, then retention
  authserver backup redis        RDB over the replication protocol | gzip | OpenPGP | S3, then retention
  authserver backup verify       restore drill: the newest postgres backup into a scratch database, checked
  authserver restore postgres [--object KEY | --expect-newest KEY] [--target-url URL] [--force] [--once] [--keep-sessions]
  authserver restore redis --out PATH [--object KEY | --expect-newest KEY]

Environment: DATABASE_URL (direct) or REDIS_URL, S3_ENDPOINT, S3_BUCKET, S3_PREFIX,
S3_REGION, S3_FORCE_PATH_STYLE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
BACKUP_PUBLIC_KEY_FILE, BACKUP_SIGNING_KEY_FILE (ed25519, PEM), BACKUP_RETENTION_DAYS (default 30);
restore: BACKUP_PRIVATE_KEY_FILE, BACKUP_PRIVATE_KEY_PASSPHRASE_FILE (if protected),
BACKUP_VERIFY_KEY_FILE (the signing key's public half: a backup it does not verify is refused
before it is decrypted), BACKUP_TRUST_UNSIGNED_BEFORE (RFC 3339: unsigned backups named before
it are accepted), BACKUP_MAX_EXPANSION (default 100: an unsigned backup may decompress to at
most that many times its size), BACKUP_EXPECT_NEWEST (or --expect-newest: the key of the newest
backup you know of; restoring or verifying the newest fails if it is older); restore postgres:
AUTH_PEPPER (and AUTH_OLD_PEPPERS, AUTH_PEPPER_SOURCE) refuse a backup whose password hashes
use none of them, REDIS_URL: flush the session cache there after restoring; verify: the
restore's, DATABASE_URL (a role with CREATEDB) and AUTH_PEPPER_FILE (AUTH_OLD_PEPPERS_FILE).
SENTRY_DSN (and SENTRY_ENVIRONMENT): report failures (exit 1 and 3) to Sentry.
DATABASE_URL, REDIS_URL and the AWS_* keys may instead be read from a file named
by NAME_FILE, as for the server.
Exit status: 0 done, 1 failed (the log line says what to do), 2 bad usage or configuration,
3 backup stored but retention failed, 4 restore refused (target not empty, pepper mismatch,
backup not authentic or decompressing past its cap, newest backup missing): nothing was
restored; verify: 1 the drill failed (its reason in the log line).
`

// Main runs `authserver backup ...` or `authserver restore ...`; args
// starts with "backup" or "restore". It logs one JSON line with the outcome
// to stderr and returns the exit status. Unexpected failures (exit 1 and 3)
// are also reported to Sentry when SENTRY_DSN is set, as the authserver's
// release.
func Main(args []string, release string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return run(ctx, args, release, os.LookupEnv, os.ReadFile, stdout, stderr)
}

func run(ctx context.Context, args []string, release string, get config.Getenv, read config.ReadFile, stdout, stderr io.Writer) int {
	// plain logs what the caller got wrong (exit 2: usage, configuration, a
	// refusal such as restoring into a non-empty database without --force);
	// log also reports to Sentry.
	plain := slog.New(slog.NewJSONHandler(stderr, nil))
	hub, err := observe.SentryFromEnv(get, read, release)
	if err != nil {
		plain.Error(args[0]+" failed", "error", err.Error())
		return 2
	}
	defer observe.Flush(hub)
	log := slog.New(observe.Reporting(plain.Handler(), hub))
	logFor := func(code int) *slog.Logger {
		if code == 2 {
			return plain
		}
		return log
	}
	if len(args) == 2 && args[0] == "backup" && args[1] == "verify" {
		return runVerify(ctx, get, read, log, plain)
	}
	if len(args) < 2 || (args[1] != KindPostgres && args[1] != KindRedis) {
		fmt.Fprint(stderr, Usage)
		return 2
	}
	verb, kind := args[0], args[1]
	switch verb {
	case "backup":
		if len(args) > 2 {
			fmt.Fprint(stderr, Usage)
			return 2
		}
		env, err := config.LoadBackup(get, read, kind)
		if err != nil {
			plain.Error("backup failed", "kind", kind, "error", err.Error())
			return 2
		}
		cfg := Config{Backup: *env}
		res, err := Backup(ctx, cfg, kind)
		writeResult(get, kind, res, err)
		var re *RetentionError
		switch {
		case errors.As(err, &re):
			log.Error("backup stored, retention failed", "kind", kind, "object", res.Object, "size_bytes", res.Size,
				"raw_bytes", res.RawSize, "duration_ms", res.Duration.Milliseconds(), "error", err.Error())
			return 3
		case err != nil:
			code := exitFor(err)
			logFor(code).Error("backup failed", "kind", kind, "object", res.Object, "duration_ms", res.Duration.Milliseconds(),
				"error", err.Error(), "completed_object", false)
			return code
		}
		log.Info("backup done", "kind", kind, "bucket", cfg.S3.Bucket, "object", res.Object, "size_bytes", res.Size,
			"raw_bytes", res.RawSize, "duration_ms", res.Duration.Milliseconds(), "expired", res.Expired)
		return 0
	case "restore":
		fs := flag.NewFlagSet("restore "+kind, flag.ContinueOnError)
		fs.SetOutput(stderr)
		object := fs.String("object", "", "key of the backup to restore (default: the newest)")
		target := fs.String("target-url", "", "PostgreSQL URL to restore into (default DATABASE_URL)")
		force := fs.Bool("force", false, "restore into a non-empty database, replacing the objects in the backup")
		out := fs.String("out", "", "redis: where to write the RDB file")
		once := fs.Bool("once", false, "a target holding this tool's restore marker counts as restored (exit 0)")
		keepSessions := fs.Bool("keep-sessions", false, "keep the restored sessions (default: revoke them all)")
		expect := fs.String("expect-newest", "", "key of the newest backup you know of: a default (newest) restore resolving to an older one fails (default BACKUP_EXPECT_NEWEST)")
		if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 {
			fmt.Fprint(stderr, Usage)
			return 2
		}
		env, err := config.LoadRestore(get, read)
		if err != nil {
			plain.Error("restore failed", "kind", kind, "error", err.Error())
			return 2
		}
		cfg := Config{Backup: *env}
		if *expect != "" {
			cfg.ExpectNewest = *expect
		}
		var res RestoreResult
		if kind == KindPostgres {
			opt := RestoreOptions{Object: *object, TargetURL: *target, Force: *force, Once: *once, RevokeSessions: !*keepSessions}
			peppers, source, perr := config.LoadPeppers(get, read)
			if perr != nil {
				plain.Error("restore failed", "kind", kind, "error", perr.Error())
				return 2
			}
			for _, p := range peppers {
				opt.Peppers = append(opt.Peppers, p.ID)
			}
			opt.PepperSource = source
			opt.RedisURL = cfg.RedisURL
			res, err = RestorePostgres(ctx, cfg, opt)
		} else {
			res, err = RestoreRedis(ctx, cfg, *object, *out)
		}
		writeRestoreResult(get, kind, res, err)
		warnUnverified(log, res.Skipped, res.Object, res.Unsigned)
		if err != nil {
			code := exitFor(err)
			logFor(code).Error("restore failed", "kind", kind, "object", res.Object, "error", err.Error())
			return code
		}
		log.Info("restore done", "kind", kind, "object", res.Object, "size_bytes", res.Size, "raw_bytes", res.RawSize,
			"duration_ms", res.Duration.Milliseconds(), "already_restored", res.AlreadyRestored,
			"sessions_revoked", res.SessionsRevoked, "cache_keys_flushed", res.CacheFlushed)
		return 0
	}
	fmt.Fprint(stderr, Usage)
	return 2
}

func exitFor(err error) int {
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	if refusal(err) != "" {
		return 4
	}
	return 1
}

// refusal is the result reason of a restore that refused before writing anything.
func refusal(err error) string {
	var pm *store.PepperMismatchError
	var nm *NewestMissingError
	switch {
	case errors.Is(err, ErrTargetNotEmpty):
		return result.RestoreTargetNotEmpty
	case errors.As(err, &pm):
		return result.RestorePepperMismatch
	case errors.As(err, &nm):
		return result.ReasonNewestBackupMissing
	}
	return notAuthenticReason(err)
}

// writeRestoreResult writes a restore's result line to BACKUP_RESULT_FILE when
// set (the operator's restore Job: its termination message feeds status.restore).
func writeRestoreResult(get config.Getenv, kind string, res RestoreResult, err error) {
	path, _ := get("BACKUP_RESULT_FILE")
	if path == "" {
		return
	}
	out := result.Result{Kind: kind, OK: err == nil, DurationMS: res.Duration.Milliseconds(), Object: res.Object,
		SizeBytes: res.Size, RawBytes: res.RawSize, Reason: refusal(err), Skipped: len(res.Skipped), Unsigned: res.Unsigned}
	if res.AlreadyRestored {
		out.Reason = result.RestoreAlreadyRestored
	}
	if err != nil {
		out.Error = err.Error()
	}
	_ = os.WriteFile(path, out.Line(), 0o644)
}

// writeResult writes the run's result line to BACKUP_RESULT_FILE when set
// (the CronJob points it at the container's termination message, which the
// operator reads for status.backups).
func writeResult(get config.Getenv, kind string, res Result, err error) {
	writeLine(get, ResultOf(kind, res, err))
}

func writeLine(get config.Getenv, r result.Result) {
	if path, _ := get("BACKUP_RESULT_FILE"); path != "" {
		_ = os.WriteFile(path, r.Line(), 0o644)
	}
}

// ResultOf is the result line of a backup run that returned res and err.
func ResultOf(kind string, res Result, err error) result.Result {
	out := result.Result{Kind: kind, OK: err == nil, DurationMS: res.Duration.Milliseconds()}
	var re *RetentionError
	if err == nil || errors.As(err, &re) {
		out.Stored, out.Object, out.SizeBytes, out.RawBytes = true, res.Object, res.Size, res.RawSize
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// runVerify runs `authserver backup verify` and reports like a backup: one
// log line and the result line in BACKUP_RESULT_FILE.
func runVerify(ctx context.Context, get config.Getenv, read config.ReadFile, log, plain *slog.Logger) int {
	env, err := config.LoadRestore(get, read)
	var peppers []config.Pepper
	if err == nil {
		peppers, _, err = config.LoadPeppers(get, read)
	}
	if err != nil {
		plain.Error("drill failed", "reason", result.ReasonDrillFailed, "error", err.Error())
		writeLine(get, result.Result{Kind: result.KindVerify, Reason: result.ReasonDrillFailed, Error: err.Error()})
		return 2
	}
	res, err := Verify(ctx, Config{Backup: *env}, peppers)
	out := DrillResultOf(res, err)
	writeLine(get, out)
	warnUnverified(log, res.Skipped, res.Object, res.Unsigned)
	attrs := []any{"reason", out.Reason, "object", res.Object, "restore_ms", out.RestoreMS, "duration_ms", out.DurationMS}
	if !res.BackupTime.IsZero() {
		attrs = append(attrs, "backup_time", out.BackupTime, "backup_age_s", int64(timeNow().Sub(res.BackupTime).Seconds()))
	}
	if err != nil {
		code := exitFor(err)
		if code == 4 {
			code = 1 // a drill refusing a backup is a failed drill
		}
		if code == 2 {
			log = plain
		}
		log.Error("drill failed", append(attrs, "error", err.Error())...)
		return code
	}
	log.Info("drill done", append(attrs, "tables", res.Tables, "rows", res.Rows)...)
	return 0
}

// DrillResultOf is the result line of a drill that returned res and err.
func DrillResultOf(res VerifyResult, err error) result.Result {
	out := result.Result{Kind: result.KindVerify, OK: err == nil, DurationMS: res.Duration.Milliseconds(), Reason: ReasonOf(err),
		Object: res.Object, RestoreMS: res.Restore.Milliseconds(), Tables: res.Tables, Rows: res.Rows,
		Skipped: len(res.Skipped), Unsigned: res.Unsigned}
	if !res.BackupTime.IsZero() {
		out.BackupTime = res.BackupTime.UTC().Format(time.RFC3339)
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// warnUnverified logs the objects a restore or drill stepped over when it
// looked for the newest backup (someone wrote the bucket, backups were
// altered, or a node's clock ran ahead), and a backup used without a signature.
func warnUnverified(log *slog.Logger, skipped []string, used string, unsigned bool) {
	if len(skipped) > 0 {
		log.Warn("skipped newer objects that are not backups signed by this stack's key, are named more than an hour in the future, "+
			"or are named after the expected newest backup but were written to the bucket before it: check who writes the bucket, and the nodes' clocks",
			"skipped", skipped, "object", used)
	}
	if unsigned && used != "" {
		log.Warn("used an unsigned backup (BACKUP_TRUST_UNSIGNED_BEFORE)", "object", used)
	}
}
