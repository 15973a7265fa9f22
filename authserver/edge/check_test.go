package edge

import (
	"net/http"
	"net/url"
	"testing"
)

func TestHostAllowed(t *testing.T) {
	patterns := []string{"app.example.com", "*.apps.example.org"}
	for host, want := range map[string]bool{
		"app.example.com":        true,
		"APP.example.com.":       true,
		"a.apps.example.org":     true,
		"x.y.apps.example.org":   true,
		"apps.example.org":       false, // the wildcard is for subdomains only
		"evilapps.example.org":   false,
		"example.com":            false,
		"app.example.com.evil.n": false,
		"":                       false,
	} {
		if got := HostAllowed(patterns, host); got != want {
			t.Errorf("HostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

// The URL handed to the sign-in page never points off the allowed hosts,
// whatever the client puts in the headers the proxy forwards.
func TestSignInLocationIsNeverAnOpenRedirect(t *testing.T) {
	signin, _ := url.Parse("https://login.example.com/signin?lang=en")
	c := &Checker{SignInURL: signin, RedirectHosts: []string{"app.example.com", "*.apps.example.com"}}
	for original, wantRD := range map[string]string{
		"https://app.example.com/a/b?x=1#frag":        "https://app.example.com/a/b?x=1",
		"http://app.example.com:8080/":                "http://app.example.com:8080/",
		"https://team.apps.example.com/x":             "https://team.apps.example.com/x",
		"https://evil.example.net/":                   "",
		"https://app.example.com@evil.example.net/":   "",
		"https://evil.example.net\\@app.example.com/": "",
		"https://evil.example.net/app.example.com":    "",
		"//evil.example.net/":                         "",
		"/relative/path":                              "",
		"javascript:alert(1)//app.example.com":        "",
		"ftp://app.example.com/":                      "",
		"https://app.example.com.evil.example.net/":   "",
		"": "",
	} {
		loc, err := url.Parse(c.signInLocation(original))
		if err != nil {
			t.Fatalf("%q: %v", original, err)
		}
		if loc.Host != "login.example.com" || loc.Path != "/signin" || loc.Query().Get("lang") != "en" {
			t.Errorf("%q: location %s is not the sign-in page", original, loc)
		}
		if got := loc.Query().Get(ReturnParam); got != wantRD {
			t.Errorf("%q: rd = %q, want %q", original, got, wantRD)
		}
	}
}

func TestOriginalURL(t *testing.T) {
	for _, c := range []struct {
		h    http.Header
		want string
	}{
		{http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}, "X-Forwarded-Uri": {"/p?q=1"}}, "https://app.example.com/p?q=1"},
		{http.Header{"X-Original-Url": {"https://app.example.com/n"}}, ""},
		{http.Header{"X-Forwarded-Uri": {"/t"}}, ""},
		{http.Header{}, ""},
	} {
		if got := OriginalURL(c.h.Get); got != c.want {
			t.Errorf("%v: %q, want %q", c.h, got, c.want)
		}
	}
}

func TestCookieValue(t *testing.T) {
	lines := []string{"a=1; other=2", `session="tok"; session=second`}
	if v, ok := CookieValue(lines, "session"); !ok || v != "tok" {
		t.Fatalf("session: %q %v", v, ok)
	}
	if v, ok := CookieValue(lines, "other"); !ok || v != "2" {
		t.Fatalf("other: %q %v", v, ok)
	}
	if _, ok := CookieValue(lines, "sess"); ok {
		t.Fatal("a prefix of a name matched")
	}
}

func TestIsBrowser(t *testing.T) {
	if !IsBrowser("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8") || IsBrowser("*/*") || IsBrowser("application/json") || IsBrowser("") {
		t.Fatal("IsBrowser")
	}
}
