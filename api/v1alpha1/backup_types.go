package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CronSchedulePattern is the regular expression (RE2) the CRD checks
// spec.backup.*.schedule against: five cron fields (minute hour day-of-month
// month day-of-week; numbers, ranges, lists, steps, month and day names) or
// one of the @yearly/@monthly/@weekly/@daily/@hourly macros.
const CronSchedulePattern = `^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]{1,2})?(,([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]{1,2})?)* +([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]{1,2})?(,([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]{1,2})?)* +([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]{1,2})?(,([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]{1,2})?)* +([*]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[0-9]{1,2})?(,([*]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[0-9]{1,2})?)* +([*]|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[0-9]{1,2})?(,([*]|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[0-9]{1,2})?)*)$`

// BackupSpec schedules encrypted, off-site backups of PostgreSQL and Redis as CronJobs
// running "authserver backup postgres|redis" (see docs/backup-and-restore.md).
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || has(self.encryption.privateKeySecretRef)",message="backup.verify needs backup.encryption.privateKeySecretRef: a drill decrypts the backup it restores"
type BackupSpec struct {
	// Postgres schedules pg_dump backups of the database.
	// +optional
	// +kubebuilder:default={}
	Postgres BackupJobSpec `json:"postgres,omitempty"`

	// Redis schedules RDB snapshots of Redis, fetched over the network from the running server.
	// +optional
	// +kubebuilder:default={}
	Redis BackupJobSpec `json:"redis,omitempty"`

	// Destination is where the encrypted backups are uploaded.
	Destination BackupDestination `json:"destination"`

	// Encryption names the OpenPGP public key the backups are encrypted to.
	Encryption BackupEncryption `json:"encryption"`

	// Verify schedules restore drills of the PostgreSQL backups (drill_types.go).
	// +optional
	Verify *DrillSpec `json:"verify,omitempty"`

	// Signing says which backups drills and restores accept (backupsigning_types.go).
	// +optional
	Signing BackupSigning `json:"signing,omitempty"`
}

// BackupJobSpec is the schedule and retention of one kind of backup.
type BackupJobSpec struct {
	// Schedule is a standard 5-field cron expression (minute hour day-of-month month
	// day-of-week), evaluated in the kube-controller-manager's time zone (UTC in most clusters).
	// +optional
	// +kubebuilder:default="0 3 * * *"
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]{1,2})?(,([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]{1,2})?)* +([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]{1,2})?(,([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]{1,2})?)* +([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]{1,2})?(,([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]{1,2})?)* +([*]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[0-9]{1,2})?(,([*]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[0-9]{1,2})?)* +([*]|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[0-9]{1,2})?(,([*]|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[0-9]{1,2})?)*)$')",message="schedule must be a 5-field cron expression (minute hour day-of-month month day-of-week) such as \"0 3 * * *\", or @daily, @hourly, @weekly, @monthly, @yearly"
	Schedule string `json:"schedule,omitempty"`

	// RetentionDays: backups older than this many days are deleted after each successful run.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3650
	RetentionDays int32 `json:"retentionDays,omitempty"`

	// Suspend stops scheduling new runs (running ones finish).
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// BackupDestination is where backups go.
type BackupDestination struct {
	// S3 is any S3-compatible object store.
	S3 S3Destination `json:"s3"`
}

// S3Destination is a bucket of an S3-compatible object store.
// Objects are written to <prefix>/postgres/<UTC time>.dump.gz.gpg and <prefix>/redis/<UTC time>.rdb.gz.gpg.
type S3Destination struct {
	// Bucket name.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	Bucket string `json:"bucket"`

	// Prefix (folder) of the objects inside the bucket.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!_.*'()/-]*$`
	Prefix string `json:"prefix,omitempty"`

	// Endpoint of the S3 API, for example https://s3.eu-west-1.amazonaws.com or
	// http://minio.backup.svc:9000. Empty means AWS S3.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != '' && url(self).getEscapedPath() in ['', '/']",message="destination.s3.endpoint must be an http(s)://host[:port] URL without a path"
	Endpoint string `json:"endpoint,omitempty"`

	// Region of the bucket.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]*$`
	Region string `json:"region,omitempty"`

	// CredentialsSecretRef names a Secret with the keys AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY. Without it the job uses its service account's cloud identity.
	// +optional
	CredentialsSecretRef *SecretNameRef `json:"credentialsSecretRef,omitempty"`

	// ForcePathStyle addresses the bucket as endpoint/bucket instead of bucket.endpoint
	// (MinIO and most self-hosted stores need it).
	// +optional
	ForcePathStyle bool `json:"forcePathStyle,omitempty"`
}

// SecretNameRef names a Secret in the AuthStack's namespace.
type SecretNameRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// BackupEncryption says how backups are encrypted before they leave the pod.
// +kubebuilder:validation:XValidation:rule="!has(self.passphraseSecretRef) || has(self.privateKeySecretRef)",message="encryption.passphraseSecretRef needs encryption.privateKeySecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.privateKeySecretRef) || self.privateKeySecretRef.name != self.publicKeySecretRef.name || self.privateKeySecretRef.key != self.publicKeySecretRef.key",message="encryption.privateKeySecretRef must name another Secret key than publicKeySecretRef"
type BackupEncryption struct {
	// PublicKeySecretRef names the Secret key holding the armored OpenPGP public key
	// (gpg --export --armor). The backup Jobs mount only this key.
	PublicKeySecretRef SecretKeyRef `json:"publicKeySecretRef"`

	// PrivateKeySecretRef names the Secret key holding the armored OpenPGP private key
	// (gpg --export-secret-keys --armor), for restore drills and declared restores only:
	// only their Jobs mount it, never the backup CronJobs. Without it the private key
	// stays out of the cluster and restores are run by hand.
	// +optional
	PrivateKeySecretRef *SecretKeyRef `json:"privateKeySecretRef,omitempty"`

	// PassphraseSecretRef names the Secret key holding the private key's passphrase, when it has one.
	// +optional
	PassphraseSecretRef *SecretKeyRef `json:"passphraseSecretRef,omitempty"`
}

// BackupsStatus reports the last runs of each kind of backup, from the Jobs.
type BackupsStatus struct {
	// +optional
	Postgres BackupKindStatus `json:"postgres,omitempty"`
	// +optional
	Redis BackupKindStatus `json:"redis,omitempty"`
	// HandledRequest is the last value of the auth.leanauth.dev/backup-now annotation
	// the operator ran (one Job per kind). The same value never runs again, even when
	// its Jobs are deleted.
	// +optional
	HandledRequest string `json:"handledRequest,omitempty"`
	// LastDrill is the newest finished restore drill (spec.backup.verify).
	// +optional
	LastDrill *DrillRun `json:"lastDrill,omitempty"`
	// LastSuccessfulDrill is the newest restore drill that passed.
	// +optional
	LastSuccessfulDrill *DrillRun `json:"lastSuccessfulDrill,omitempty"`
	// SigningKeySecret is the Secret the operator generated the backups' signing key
	// into. Once set, the operator never generates another: if that Secret is deleted,
	// BackupsHealthy says so until it is restored (a new key would not verify the
	// backups the old one signed).
	// +optional
	SigningKeySecret string `json:"signingKeySecret,omitempty"`
}

// BackupKindStatus is the last successful and the last failed run of one kind
// of backup, and the stored backup holding the newest data.
type BackupKindStatus struct {
	// +optional
	LastSuccess *BackupRun `json:"lastSuccess,omitempty"`
	// +optional
	LastFailure *BackupRun `json:"lastFailure,omitempty"`
	// Newest is the successful run whose backup holds the newest data: of those
	// that stored an object, the one whose Job started last (the cluster's clock;
	// a run that took long finishes after a later one, and an object's name carries
	// the clock of the node that made it). The restore drill and a declared restore
	// of latest expect its object (BACKUP_EXPECT_NEWEST); a success without an
	// object never replaces it.
	// +optional
	Newest *BackupRun `json:"newest,omitempty"`
}

// BackupRun is one backup Job's outcome.
type BackupRun struct {
	// Time the Job finished.
	Time metav1.Time `json:"time"`
	// Started is the time the Job started.
	// +optional
	Started *metav1.Time `json:"started,omitempty"`
	// Job is the name of the Job.
	// +optional
	Job string `json:"job,omitempty"`
	// Object is the key written in the bucket.
	// +optional
	Object string `json:"object,omitempty"`
	// SizeBytes stored (compressed and encrypted).
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// Message says why a run failed.
	// +optional
	Message string `json:"message,omitempty"`
}

// ConditionBackupsHealthy is True while every scheduled kind of backup succeeds on time.
const ConditionBackupsHealthy = "BackupsHealthy"

// Reasons of ConditionBackupsHealthy.
const (
	ReasonBackupsSucceeded    = "BackupsSucceeded"
	ReasonAwaitingFirstBackup = "AwaitingFirstBackup"
	ReasonBackupFailed        = "BackupFailed"
	ReasonBackupOverdue       = "BackupOverdue"
	ReasonBackupsSuspended    = "BackupsSuspended"
	ReasonInvalidSchedule     = "InvalidSchedule"
)
