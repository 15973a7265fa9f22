package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupSigning says which backups a restore drill and a declared restore accept.
// Every backup is signed (ed25519) with a key the operator generates into the Secret
// <stack>-backup-signing, which only the backup Jobs mount; drills and restores
// mount its public half and refuse, before decrypting anything, a backup it does not
// verify (docs/backup-and-restore.md, "Signed backups").
type BackupSigning struct {
	// TrustUnsignedBefore accepts unsigned backups whose name's time and S3 Last-Modified
	// are both before it: backups made before this operator release signed them. Set it
	// to the time the stack's first signed backup was taken (or earlier); unsigned
	// objects written later, which anyone who may write the bucket can upload, stay
	// refused whatever their name. Unset: every unsigned backup is refused.
	// +optional
	TrustUnsignedBefore *metav1.Time `json:"trustUnsignedBefore,omitempty"`

	// MaxExpansion caps how large an unsigned backup may grow when it is decompressed,
	// as a multiple of its stored size (a signed backup is capped at the size its
	// signature states). Default 100: the stack's data compresses about 4 times.
	// +optional
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=100000
	MaxExpansion int32 `json:"maxExpansion,omitempty"`
}

// Reasons of Restored and of RestoreVerified (the drill's result) when the backup is
// refused before it is decrypted.
const (
	// ReasonBackupNotAuthentic: no signature by the stack's key, or bytes other than signed.
	ReasonBackupNotAuthentic = "BackupNotAuthentic"
	// ReasonBackupTooLarge: the backup decompresses past its cap (a gzip bomb).
	ReasonBackupTooLarge = "BackupTooLarge"
	// ReasonNewestBackupMissing: the newest backup the stack recorded
	// (status.backups.postgres.lastSuccess) was deleted from the bucket or altered,
	// so "latest" would be an older one: nothing was restored.
	ReasonNewestBackupMissing = "NewestBackupMissing"
)
