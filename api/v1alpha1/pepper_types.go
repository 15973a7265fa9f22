package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// PepperRotationSpec rotates the pepper without resetting a password (docs/operations.md,
// "Rotate the pepper"). Peppers are numbered like Vault transit key versions: version 1 is
// the stack's first pepper (the generated <name>-pepper, or spec.pepper); the highest
// version hashes, every other one not retired still verifies, and each login with an
// older one rehashes with the current one.
// +kubebuilder:validation:XValidation:rule="!has(self.retireBelow) || self.retireBelow <= self.version",message="pepperRotation.retireBelow cannot exceed pepperRotation.version: the current pepper is never retired"
// +kubebuilder:validation:XValidation:rule="!has(self.peppers) || self.peppers.all(p, p.version >= 2 && p.version <= self.version)",message="pepperRotation.peppers: each version must be between 2 and pepperRotation.version"
// +kubebuilder:validation:XValidation:rule="self.version >= oldSelf.version && self.version <= oldSelf.version + 1",message="pepperRotation.version can only be raised, by one at a time: lowering it would make the current pepper an unknown one"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.peppers) || oldSelf.peppers.all(o, has(self.peppers) && self.peppers.exists(n, n == o))",message="pepperRotation.peppers entries cannot be changed or removed: hashes made with them would no longer verify (retire them with retireBelow)"
// +kubebuilder:validation:XValidation:rule="!(has(self.force) && self.force && has(oldSelf.force) && oldSelf.force) || (has(self.retireBelow) ? self.retireBelow : 0) == (has(oldSelf.retireBelow) ? oldSelf.retireBelow : 0)",message="pepperRotation.force acknowledges one retirement: set it to false before raising retireBelow again"
type PepperRotationSpec struct {
	// Version is the current pepper's version. Raise it by one to rotate: with a generated
	// pepper the operator generates the new one into the immutable Secret
	// <name>-pepper-v<version>; with spec.pepper, add the version to peppers.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Version int32 `json:"version"`
	// Peppers you bring for versions 2 and up (only with spec.pepper): one entry per
	// version up to Version. Entries are never changed or removed.
	// +optional
	// +listType=map
	// +listMapKey=version
	// +kubebuilder:validation:MaxItems=99
	Peppers []VersionedPepper `json:"peppers,omitempty"`
	// RetireBelow retires every version below it: the operator stops giving those peppers
	// to the pods once no stored password hash or TOTP secret uses them (see
	// status.pepper), and says RetirementBlocked until then. The Secrets are never deleted.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RetireBelow int32 `json:"retireBelow,omitempty"`
	// Force retires the versions below RetireBelow even though hashes still use them:
	// those users must reset their password (a login fails like a wrong password; the
	// forgot-password email works) and enrol TOTP again. Set it together with or after
	// RetireBelow; it must be false again before RetireBelow is raised once more.
	// +optional
	Force bool `json:"force,omitempty"`
}

// VersionedPepper is a pepper you bring for a version above 1.
type VersionedPepper struct {
	// Version of this pepper.
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=100
	Version int32 `json:"version"`
	// SecretRef names the Secret key holding it (32 bytes written as 64 hex characters).
	SecretRef SecretKeyRef `json:"secretRef"`
}

// PepperStatus reports the pepper versions and how many stored secrets each still protects.
type PepperStatus struct {
	// CurrentVersion is the version new hashes are made with.
	// +optional
	CurrentVersion int32 `json:"currentVersion,omitempty"`
	// CountedAt is when the stored hashes were last counted (the <name>-pepper-count
	// CronJob, every 10 minutes while older peppers are mounted).
	// +optional
	CountedAt *metav1.Time `json:"countedAt,omitempty"`
	// Versions, newest first.
	// +optional
	// +listType=map
	// +listMapKey=version
	Versions []PepperVersionStatus `json:"versions,omitempty"`
}

// PepperVersionStatus is one pepper version: where it is, never what it is.
type PepperVersionStatus struct {
	Version int32 `json:"version"`
	// ID is the pepper's id, as the hashes name it (keyid=): a digest, not the pepper.
	// +optional
	ID string `json:"id,omitempty"`
	// SecretRef names the Secret key holding it.
	SecretRef SecretKeyRef `json:"secretRef"`
	// State: Current (hashes), Accepted (verifies older hashes), Retired (no longer given
	// to the pods; the Secret is kept).
	// +kubebuilder:validation:Enum=Current;Accepted;Retired
	State string `json:"state"`
	// PasswordHashes counts the stored password hashes made with it, at CountedAt.
	// +optional
	PasswordHashes *int64 `json:"passwordHashes,omitempty"`
	// TOTPSecrets counts the TOTP secrets encrypted under it, at CountedAt.
	// +optional
	TOTPSecrets *int64 `json:"totpSecrets,omitempty"`
}

// States of a pepper version.
const (
	PepperStateCurrent  = "Current"
	PepperStateAccepted = "Accepted"
	PepperStateRetired  = "Retired"
)

// ConditionPepperRotated is True when every pepper below the current one is retired;
// set only while spec.pepperRotation is.
const ConditionPepperRotated = "PepperRotated"

// Reasons of PepperRotated.
const (
	ReasonRotated            = "Rotated"
	ReasonRotationInProgress = "RotationInProgress"
	ReasonReadyToRetire      = "ReadyToRetire"
	ReasonRetirementBlocked  = "RetirementBlocked"
	ReasonCountPending       = "CountPending"
)
