package ui

import "testing"

// The return path after login stays on this origin.
func TestNextStaysOnOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"/app/dashboard?tab=1":  "/app/dashboard?tab=1",
		"/":                     "/",
		"//evil.example/":       "",
		"/\\evil.example":       "",
		"https://evil.example/": "",
		"javascript:alert(1)":   "",
		"/a\nb":                 "",
		"/a b":                  "",
		"":                      "",
	} {
		if got := next(in); got != want {
			t.Errorf("next(%q) = %q, want %q", in, got, want)
		}
	}
}
