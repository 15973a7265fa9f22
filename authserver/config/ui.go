package config

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// UI is the hosted pages under /auth/ui/ (authserver/ui) and their branding.
// Every value ends up in HTML or CSS, so each is checked here against a
// shape that cannot break out of its context (html/template escapes too).
type UI struct {
	Enabled bool
	// EmailLinks points the links of emails at the hosted pages
	// (HostedUIURL) instead of FRONTEND_URL's app.
	EmailLinks  bool
	ProductName string
	// LogoURL is an https URL or an absolute path on this origin; empty: none.
	LogoURL string
	// LogoOrigin is LogoURL's scheme://host when it is on another origin
	// (added to the pages' img-src), else empty.
	LogoOrigin      string
	PrimaryColor    string // #rrggbb
	BackgroundColor string // #rrggbb
}

var (
	hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	// A host as it may appear in a CSP source: no spaces, quotes or semicolons.
	cspHost = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)
)

// loadUI: AUTH_UI_* (docs/authserver.md, "Hosted pages").
func loadUI(l *loader, c *Config) {
	u := &c.UI
	u.Enabled = l.boolean("AUTH_UI_ENABLED", false)
	u.EmailLinks = l.boolean("AUTH_UI_EMAIL_LINKS", false)
	if u.EmailLinks && !u.Enabled {
		l.fail("AUTH_UI_EMAIL_LINKS", "needs AUTH_UI_ENABLED=true (the links would lead to pages that are not served)")
	}
	u.ProductName = l.str("AUTH_UI_PRODUCT_NAME", "AuthStack", false)
	if err := CheckProductName(u.ProductName); err != "" {
		l.fail("AUTH_UI_PRODUCT_NAME", "%s", err)
	}
	u.LogoURL = l.str("AUTH_UI_LOGO_URL", "", false)
	if u.LogoURL != "" {
		origin, err := CheckLogoURL(u.LogoURL)
		if err != "" {
			l.fail("AUTH_UI_LOGO_URL", "%s", err)
		}
		u.LogoOrigin = origin
	}
	u.PrimaryColor = l.str("AUTH_UI_PRIMARY_COLOR", "#1f5fbf", false)
	u.BackgroundColor = l.str("AUTH_UI_BACKGROUND_COLOR", "#f6f7f9", false)
	for name, v := range map[string]string{"AUTH_UI_PRIMARY_COLOR": u.PrimaryColor, "AUTH_UI_BACKGROUND_COLOR": u.BackgroundColor} {
		if !hexColor.MatchString(v) {
			l.fail(name, "must be a colour like #1f5fbf, got %q", v)
		}
	}
}

// CheckProductName returns why name cannot be the product name, or "".
func CheckProductName(name string) string {
	if name == "" || utf8.RuneCountInString(name) > 64 || !utf8.ValidString(name) {
		return "must be 1 to 64 characters"
	}
	for _, r := range name {
		if unicode.IsControl(r) || strings.ContainsRune(`<>"'\`+"`", r) {
			return "must not contain control characters, quotes or angle brackets"
		}
	}
	return ""
}

// CheckLogoURL returns the origin of an https logo URL ("" for a path on
// this origin) or why it is refused.
func CheckLogoURL(v string) (origin string, problem string) {
	const shape = "must be an https URL or a path starting with / (at most 2048 characters, no spaces, quotes, parentheses or backslashes)"
	if len(v) > 2048 || strings.ContainsAny(v, " \t\r\n\"'()\\<>`") {
		return "", shape
	}
	if strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//") {
		return "", ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.User != nil || !cspHost.MatchString(u.Host) {
		return "", shape
	}
	return "https://" + u.Host, ""
}

// HostedUIURL is the public base of the hosted pages: FRONTEND_URL's origin
// and /auth/ui (the authserver is routed at /auth on the app's origin).
func (c *Config) HostedUIURL() *url.URL {
	return &url.URL{Scheme: c.FrontendURL.Scheme, Host: c.FrontendURL.Host, Path: "/auth/ui"}
}

// EmailLinkBase is what the links of emails are built on: the hosted pages
// when AUTH_UI_EMAIL_LINKS is set, else FRONTEND_URL.
func (c *Config) EmailLinkBase() *url.URL {
	if c.UI.EmailLinks && c.FrontendURL != nil {
		return c.HostedUIURL()
	}
	return c.FrontendURL
}
