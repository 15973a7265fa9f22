package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// MFAMethod is a second factor users may enrol.
// +kubebuilder:validation:Enum=totp;passkey
type MFAMethod string

// MFAMode says whether a second factor is up to each user or required.
// +kubebuilder:validation:Enum=optional;required
type MFAMode string

// MFASpec configures second factors (docs/authserver.md, "Second factors").
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'required' || (has(self.methods) && size(self.methods) > 0)",message="authServer.mfa.mode required needs at least one method in authServer.mfa.methods"
type MFASpec struct {
	// Methods users may enrol: totp (authenticator apps) and passkey. A factor
	// enrolled before its method was removed here keeps working and is still
	// asked for at login. An empty list offers none.
	// +optional
	// +kubebuilder:default={"totp","passkey"}
	// +kubebuilder:validation:MaxItems=2
	// +listType=set
	Methods []MFAMethod `json:"methods,omitempty"`

	// Mode optional lets each user choose; required sends a user without a
	// second factor to enrol one after the password step, before any session.
	// +optional
	// +kubebuilder:default=optional
	Mode MFAMode `json:"mode,omitempty"`

	// StepUpWindow is how recent an authentication (with the second factor,
	// when the user has one) must be to change the password or the factors.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('24h')",message="authServer.mfa.stepUpWindow must be between 1m and 24h"
	StepUpWindow *metav1.Duration `json:"stepUpWindow,omitempty"`
}
