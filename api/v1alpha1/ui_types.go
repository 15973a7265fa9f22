package v1alpha1

// UISpec configures the hosted pages under /auth/ui/ (docs/authserver.md,
// "Hosted pages"): sign up, verify, log in, forgot/reset and the account.
// +kubebuilder:validation:XValidation:rule="!has(self.emailLinks) || !self.emailLinks || (has(self.enabled) && self.enabled)",message="authServer.ui.emailLinks needs authServer.ui.enabled"
type UISpec struct {
	// Enabled serves the pages.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// EmailLinks points the links of emails at the hosted pages
	// (FRONTEND_URL's origin + /auth/ui/...) instead of the app at
	// FRONTEND_URL: set it when no app of yours handles /verify-email,
	// /reset-password, /login and /forgot-password.
	// +optional
	EmailLinks bool `json:"emailLinks,omitempty"`

	// Branding is the product name, logo and colours of the pages.
	// +optional
	Branding UIBranding `json:"branding,omitempty"`
}

// UIBranding is what the hosted pages show. Every value lands in HTML or
// CSS, so each is held to a shape that cannot leave its context (the
// authserver checks the same at start).
type UIBranding struct {
	// ProductName is shown in every page's header and title.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[^\x00-\x1f\x7f-\x9f<>"'\x60\\]+$`
	ProductName string `json:"productName,omitempty"`

	// LogoURL is an https URL, or a path on the pages' origin, of the logo.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][^\s"'()\\<>\x60]*)?|/([^/\\\s"'()<>\x60][^\s"'()\\<>\x60]*)?)$`
	LogoURL string `json:"logoURL,omitempty"`

	// PrimaryColor is the colour of the main buttons, as #rrggbb.
	// +optional
	// +kubebuilder:validation:Pattern=`^#[0-9a-fA-F]{6}$`
	PrimaryColor string `json:"primaryColor,omitempty"`

	// BackgroundColor is the page background, as #rrggbb.
	// +optional
	// +kubebuilder:validation:Pattern=`^#[0-9a-fA-F]{6}$`
	BackgroundColor string `json:"backgroundColor,omitempty"`
}
