package v1alpha1

// PasskeysSpec is the passkey (WebAuthn) relying party (docs/authserver.md,
// "Passkeys"). Unset, it follows spec.frontendURL: the relying party id is
// its host name and the only origin its origin. Whether users may register
// passkeys is authServer.mfa.methods.
// +kubebuilder:validation:XValidation:rule="!has(self.rpID) || !has(self.origins) || self.origins.all(o, url(o).getHostname() == self.rpID || url(o).getHostname().endsWith('.' + self.rpID))",message="authServer.passkeys.origins must be on authServer.passkeys.rpID or a subdomain of it"
type PasskeysSpec struct {
	// RPID is the relying party id: a host name (no scheme, port or IP
	// address) that the host of every origin equals or ends with. A parent
	// domain (example.com) lets app.example.com and login.example.com share
	// passkeys. Changing it later orphans the passkeys registered under the
	// old one.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?[.])*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$') && !isIP(self)",message="authServer.passkeys.rpID must be a lower-case host name without scheme, port or IP address"
	RPID string `json:"rpID,omitempty"`

	// Origins the browser may report for a ceremony (scheme://host[:port]),
	// when the pages run elsewhere than spec.frontendURL, or in several places.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=300
	// +kubebuilder:validation:items:Pattern=`^https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$`
	Origins []string `json:"origins,omitempty"`
}
