package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultDrillSchedule runs the restore drill two hours after the default backup.
const DefaultDrillSchedule = "0 5 * * *"

// DrillSpec schedules restore drills: a CronJob running "authserver backup verify",
// which restores the newest PostgreSQL backup into a scratch database on the same
// server, checks it and drops it (docs/backup-and-restore.md, "Read a drill's result").
type DrillSpec struct {
	// Schedule is a standard 5-field cron expression, like the backups' schedules.
	// +optional
	// +kubebuilder:default="0 5 * * *"
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]{1,2})?(,([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]{1,2})?)* +([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]{1,2})?(,([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]{1,2})?)* +([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]{1,2})?(,([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]{1,2})?)* +([*]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[0-9]{1,2})?(,([*]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[0-9]{1,2})?)* +([*]|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[0-9]{1,2})?(,([*]|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[0-9]{1,2})?)*)$')",message="schedule must be a 5-field cron expression (minute hour day-of-month month day-of-week) such as \"0 3 * * *\", or @daily, @hourly, @weekly, @monthly, @yearly"
	Schedule string `json:"schedule,omitempty"`

	// Suspend stops scheduling new drills (a running one finishes).
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// DrillRun is one restore drill's outcome.
type DrillRun struct {
	// Time the drill's Job finished.
	Time metav1.Time `json:"time"`
	// Job is the name of the Job.
	// +optional
	Job string `json:"job,omitempty"`
	// Succeeded: the backup restored and every check passed.
	Succeeded bool `json:"succeeded"`
	// Reason is the drill's result: DrillSucceeded or why it failed (the
	// reasons of the RestoreVerified condition).
	Reason string `json:"reason"`
	// Object is the key of the backup the drill restored.
	// +optional
	Object string `json:"object,omitempty"`
	// BackupTime is when that backup was taken (from its name).
	// +optional
	BackupTime *metav1.Time `json:"backupTime,omitempty"`
	// RestoreSeconds is the measured restore time: download, decryption and pg_restore.
	// +optional
	RestoreSeconds int64 `json:"restoreSeconds,omitempty"`
	// Message says what was checked, or what failed and what to do.
	// +optional
	Message string `json:"message,omitempty"`
}

// ConditionRestoreVerified is True while the newest restore drill restored the
// newest PostgreSQL backup and every check passed.
const ConditionRestoreVerified = "RestoreVerified"

// Reasons of ConditionRestoreVerified besides the drill's own (DrillRun.Reason:
// DrillSucceeded, NoBackup, BackupUnreadable, ScratchDatabaseUnavailable,
// RestoreFailed, RowCountMismatch, MigrationFailed, CanaryMismatch, DrillFailed;
// authserver/backup/result) and ReasonSecretNotFound.
const (
	ReasonDrillSucceeded     = "DrillSucceeded"
	ReasonDrillFailed        = "DrillFailed"
	ReasonAwaitingFirstDrill = "AwaitingFirstDrill"
	ReasonDrillOverdue       = "DrillOverdue"
	ReasonDrillsSuspended    = "DrillsSuspended"
)
