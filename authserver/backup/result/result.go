// Package result is the one-line JSON summary of a backup run: written by
// `authserver backup` (authserver/backup) to BACKUP_RESULT_FILE, which the
// CronJob points at the container's termination message, and read by the
// operator (controllers/resources/backup_status.go) for status.backups.
// It imports only the standard library, so the operator can use it without
// the backup's dependencies.
package result

import (
	"encoding/json"
	"strings"
)

// Result is one backup run's outcome.
type Result struct {
	Kind       string `json:"kind"`
	OK         bool   `json:"ok"`
	DurationMS int64  `json:"duration_ms"`
	// Stored: the backup object is complete in S3 (OK, or retention failed after it).
	Stored    bool   `json:"stored,omitempty"`
	Object    string `json:"object,omitempty"`
	SizeBytes int64  `json:"size_bytes,omitempty"` // compressed and encrypted, as stored
	RawBytes  int64  `json:"raw_bytes,omitempty"`  // the dump before compression
	Error     string `json:"error,omitempty"`

	// A restore drill's facts (Kind "verify", authserver/backup/verify.go), and
	// Reason also for a restore (Kind "postgres": RestoreTargetNotEmpty,
	// RestorePepperMismatch, RestoreAlreadyRestored, or empty), which the operator
	// turns into the Restored condition. BackupTime is the backup's time (from
	// its name), RFC 3339.
	Reason     string `json:"reason,omitempty"`
	BackupTime string `json:"backup_time,omitempty"`
	RestoreMS  int64  `json:"restore_ms,omitempty"` // download, decrypt and pg_restore
	Tables     int    `json:"tables,omitempty"`     // tables whose row counts were compared
	Rows       int64  `json:"rows,omitempty"`       // rows in them

	// Skipped counts the newer objects that resolving the newest backup stepped
	// over because they are not signed by the stack's key (or were altered);
	// Unsigned says the backup used had no signature and was trusted by
	// BACKUP_TRUST_UNSIGNED_BEFORE. Both are warnings for the operator's status.
	Skipped  int  `json:"skipped,omitempty"`
	Unsigned bool `json:"unsigned,omitempty"`
}

// KindVerify is the Kind of a restore drill's result.
const KindVerify = "verify"

// Reasons of a restore drill's result; the operator uses them as the reasons
// of the RestoreVerified condition.
const (
	ReasonDrillSucceeded             = "DrillSucceeded"
	ReasonNoBackup                   = "NoBackup"                   // nothing under <prefix>/postgres/
	ReasonBackupUnreadable           = "BackupUnreadable"           // wrong key, damaged object, no manifest, not a pg_dump archive
	ReasonScratchDatabaseUnavailable = "ScratchDatabaseUnavailable" // the role may not CREATE DATABASE
	ReasonRestoreFailed              = "RestoreFailed"              // pg_restore into the scratch database failed
	ReasonRowCountMismatch           = "RowCountMismatch"           // restored rows differ from the counts taken with the dump
	ReasonMigrationFailed            = "MigrationFailed"            // the schema migrations failed on the restored data
	ReasonCanaryMismatch             = "CanaryMismatch"             // the canary hash is missing or does not verify with the pepper
	ReasonDrillFailed                = "DrillFailed"                // anything else (S3 unreachable, bad configuration, killed)
)

// Reasons of a drill's and of a restore's result when the backup is refused
// before it is decrypted (authserver/backup/sign.go).
const (
	ReasonBackupNotAuthentic = "BackupNotAuthentic" // no signature by the stack's key, or bytes other than signed
	ReasonBackupTooLarge     = "BackupTooLarge"     // decompresses past its cap (gzip bomb)
	// ReasonNewestBackupMissing: "latest" would be older than the newest backup
	// the stack recorded (BACKUP_EXPECT_NEWEST): it was deleted or damaged.
	ReasonNewestBackupMissing = "NewestBackupMissing"
)

// MaxErrorBytes bounds Error so the line stays inside the 4096 bytes the
// kubelet keeps of a termination message.
const MaxErrorBytes = 3000

// Line is r as one JSON line, Error cut to MaxErrorBytes.
func (r Result) Line() []byte {
	if len(r.Error) > MaxErrorBytes {
		r.Error = strings.ToValidUTF8(r.Error[:MaxErrorBytes], "")
	}
	b, _ := json.Marshal(r) // cannot fail: strings, numbers and booleans
	return append(b, '\n')
}

// Parse reads the result from a termination message: its last line, since
// the message may hold more than the result. ok is false when that line is
// not a result (and r is then the zero Result).
func Parse(message string) (r Result, ok bool) {
	s := strings.TrimSpace(message)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Result{}, false
	}
	return r, true
}

// Reasons of a restore's result (`authserver restore postgres`).
const (
	RestoreTargetNotEmpty  = "TargetNotEmpty"
	RestorePepperMismatch  = "PepperMismatch"
	RestoreAlreadyRestored = "AlreadyRestored"
)
