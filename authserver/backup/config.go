// Package backup implements `authserver backup` and `authserver restore`:
// PostgreSQL dumps (pg_dump -Fc) and Redis RDB snapshots (fetched over the
// replication protocol), gzip-compressed, OpenPGP-encrypted to a public key
// and streamed to S3 with a multipart upload; retention; and the restore
// path. See DESIGN.md beside this file and docs/backup-and-restore.md.
package backup

import (
	"time"

	"github.com/leanauth/authstack/authserver/config"
)

// Config is a backup or restore run: its environment, read by
// config.LoadBackup or config.LoadRestore, and a clock.
type Config struct {
	config.Backup

	// Now is the clock (tests inject one); nil means time.Now.
	Now func() time.Time
}

// UsageError is a run the command line or the environment leaves
// impossible (exit status 2); its message says what to pass or set.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }
