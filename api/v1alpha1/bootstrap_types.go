package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BootstrapSpec says where a new stack's data comes from. Without it the stack starts
// empty. It is set at creation only and never changes (like CloudNativePG's
// spec.bootstrap): see docs/backup-and-restore.md, "Declare a restore".
type BootstrapSpec struct {
	// FromBackup restores the PostgreSQL database from a backup made by "authserver backup
	// postgres" before any authserver pod starts. Needs spec.backup.encryption.privateKeySecretRef.
	// +optional
	FromBackup *FromBackupSpec `json:"fromBackup,omitempty"`
}

// FromBackupSpec picks the backup a new stack is restored from.
type FromBackupSpec struct {
	// Object is the key of the backup in the bucket, for example
	// prod/team-a/postgres/20261128T030000Z.dump.gz.gpg, or "latest": the newest PostgreSQL
	// backup under the source's prefix when the restore Job starts (status.restore.object
	// then records which one it was).
	// +optional
	// +kubebuilder:default=latest
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self == 'latest' || self.matches('^([A-Za-z0-9!_.*()/-]*/)?postgres/[0-9]{8}T[0-9]{6}Z[.]dump[.]gz[.]gpg$')",message="bootstrap.fromBackup.object must be \"latest\" or the key of a PostgreSQL backup, such as prod/team-a/postgres/20261128T030000Z.dump.gz.gpg"
	Object string `json:"object,omitempty"`

	// Source is the bucket holding the backup. Defaults to spec.backup.destination; name
	// another one to recover into a new stack or cluster from another stack's backups.
	// +optional
	Source *BackupDestination `json:"source,omitempty"`

	// VerifyKeySecretRef names the Secret key holding the public key (PEM) the backup's
	// signature is checked with. Defaults to this stack's own (key verify.pem of the
	// Secret <stack>-backup-signing); to restore another stack's backups, copy that
	// stack's verify.pem into a Secret and name it here.
	// +optional
	VerifyKeySecretRef *SecretKeyRef `json:"verifyKeySecretRef,omitempty"`
}

// RestoreStatus reports the declared restore (spec.bootstrap.fromBackup).
type RestoreStatus struct {
	// Phase is Pending (waiting for its inputs), Running, Succeeded or Failed. Succeeded is
	// final: the restore never runs again.
	// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
	Phase string `json:"phase"`
	// Object is the key of the backup restored (the one "latest" resolved to).
	// +optional
	Object string `json:"object,omitempty"`
	// Job is the name of the restore Job.
	// +optional
	Job string `json:"job,omitempty"`
	// StartTime is when the restore Job started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// CompletionTime is when it succeeded or failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Message says what happened, and on failure what to do.
	// +optional
	Message string `json:"message,omitempty"`
}

// Phases of status.restore.
const (
	RestorePending   = "Pending"
	RestoreRunning   = "Running"
	RestoreSucceeded = "Succeeded"
	RestoreFailed    = "Failed"
)

// ConditionRestored is present with spec.bootstrap.fromBackup: True once the backup is
// restored. Until then no authserver pod runs.
const ConditionRestored = "Restored"

// Reasons of ConditionRestored.
const (
	ReasonRestorePending   = "RestorePending"
	ReasonRestoreRunning   = "RestoreRunning"
	ReasonRestoreSucceeded = "RestoreSucceeded"
	ReasonRestoreFailed    = "RestoreFailed"
	// ReasonTargetNotEmpty: the database already holds data that no declared restore wrote.
	ReasonTargetNotEmpty = "TargetNotEmpty"
	// ReasonWaitingForRestore (on AuthServerAvailable): no authserver pod runs before the
	// declared restore succeeded.
	ReasonWaitingForRestore = "WaitingForRestore"
	// ReasonPepperMismatch (conditions.go) is also a reason of Restored: the backup's
	// password hashes need a pepper the stack does not have. Nothing was restored.
)
