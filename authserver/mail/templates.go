// Package mail renders the transactional emails, queues them in the outbox
// table and sends them over SMTP from a background worker.
package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"
)

// Email kinds, as stored in outbox.kind.
const (
	KindVerify        = "verify"
	KindAccountExists = "account_exists"
	KindReset         = "reset"
)

//go:embed templates/*
var templateFS embed.FS

type tmpl struct {
	subject string
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

var templates = func() map[string]tmpl {
	out := map[string]tmpl{}
	for _, k := range []string{KindVerify, KindAccountExists, KindReset} {
		subj, err := templateFS.ReadFile("templates/" + k + ".subject.txt")
		if err != nil {
			panic(err)
		}
		out[k] = tmpl{
			subject: strings.TrimSpace(string(subj)),
			text:    texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/"+k+".txt.tmpl")).Option("missingkey=error"),
			html:    htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/"+k+".html.tmpl")).Option("missingkey=error"),
		}
	}
	return out
}()

// Links builds the frontend URLs that emails point to.
type Links struct {
	Base *url.URL // FRONTEND_URL
}

func (l Links) page(path string, token string) string {
	u := *l.Base
	u.Path = strings.TrimRight(u.Path, "/") + path
	if token != "" {
		u.RawQuery = url.Values{"token": {token}}.Encode()
	}
	return u.String()
}

// Verify is the link of a verification email.
func (l Links) Verify(token string) string { return l.page("/verify-email", token) }

// Reset is the link of a password reset email.
func (l Links) Reset(token string) string { return l.page("/reset-password", token) }

// Login is the sign-in page.
func (l Links) Login() string { return l.page("/login", "") }

// ForgotPassword is the page that starts a reset.
func (l Links) ForgotPassword() string { return l.page("/forgot-password", "") }

// Rendered is a rendered email.
type Rendered struct {
	Subject, Text, HTML string
}

// Data is what templates may use.
type Data struct {
	Link      string
	LoginLink string
	ResetLink string
	ValidFor  string
}

// Render renders the email of kind with data.
func Render(kind string, data Data) (Rendered, error) {
	t, ok := templates[kind]
	if !ok {
		return Rendered{}, fmt.Errorf("rendering email: unknown kind %q", kind)
	}
	var txt, html bytes.Buffer
	if err := t.text.Execute(&txt, data); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s text: %w", kind, err)
	}
	if err := t.html.Execute(&html, data); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s html: %w", kind, err)
	}
	return Rendered{Subject: t.subject, Text: txt.String(), HTML: html.String()}, nil
}

// HumanDuration renders 24h as "24 hours", 30m as "30 minutes".
func HumanDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		n := int(d / time.Hour)
		if n == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", n)
	case d >= time.Minute:
		n := int(d / time.Minute)
		if n == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", n)
	default:
		return d.String()
	}
}
