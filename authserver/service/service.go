// Package service holds the rules of the authserver: signup, verification,
// login, sessions and password recovery. Handlers decode, call one method
// and encode; everything that matters happens here.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/mail"
	"github.com/leanauth/authstack/authserver/mfa"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// Client is who made a request.
type Client = audit.Client

// Notifier is told when an email was queued (the mail worker).
type Notifier interface{ Notify() }

// EmailCounter counts email events.
type EmailCounter interface{ EmailEvent(kind string) }

// FactorCounter counts second-factor checks by method and result (ok, invalid).
type FactorCounter interface{ SecondFactor(method, result string) }

// Service implements the auth rules.
type Service struct {
	store    *store.Store
	hasher   *password.Hasher
	sessions *session.Manager
	limiter  *ratelimit.Limiter
	audit    *audit.Recorder
	mailer   Notifier
	emails   EmailCounter
	factors  FactorCounter
	links    mail.Links
	limits   config.RateLimits
	verify   time.Duration
	reset    time.Duration
	mfa      config.MFA
	keyring  *mfa.Keyring // nil without a pepper: TOTP is unavailable
	log      *slog.Logger

	wa           *webauthn.WebAuthn // nil: passkeys off
	passkeyCount PasskeyCounter

	bg      sync.WaitGroup     // background work started by requests (rehashes)
	hookFor func(point string) // tests only (export_test.go): called between a check and its write
}

func (s *Service) hook(point string) {
	if s.hookFor != nil {
		s.hookFor(point)
	}
}

// Wait waits for the background work that requests started (rehashes).
func (s *Service) Wait() { s.bg.Wait() }

// Deps are the parts a Service is built from.
type Deps struct {
	Store    *store.Store
	Hasher   *password.Hasher
	Sessions *session.Manager
	Limiter  *ratelimit.Limiter
	Audit    *audit.Recorder
	Mailer   Notifier
	Emails   EmailCounter
	Passkeys PasskeyCounter
	Factors  FactorCounter // may be nil
	Config   *config.Config
	Logger   *slog.Logger
}

// New returns a Service.
func New(d Deps) *Service {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	// The config loader checked the relying party with go-webauthn's own
	// rules, so this fails only on a bug: passkeys are then off, loudly.
	wa, err := newWebAuthn(d.Config.WebAuthn)
	if err != nil {
		d.Logger.Error("passkeys disabled", "error", err.Error())
	}
	s := &Service{wa: wa, passkeyCount: d.Passkeys,
		store: d.Store, hasher: d.Hasher, sessions: d.Sessions, limiter: d.Limiter, audit: d.Audit,
		mailer: d.Mailer, emails: d.Emails, factors: d.Factors, links: mail.Links{Base: d.Config.EmailLinkBase()},
		limits: d.Config.RateLimits, verify: d.Config.VerifyTokenTTL, reset: d.Config.ResetTokenTTL,
		mfa: d.Config.MFA, log: d.Logger,
	}
	if s.mfa.ChallengeTTL <= 0 {
		s.mfa.ChallengeTTL = 5 * time.Minute
	}
	if s.mfa.StepUpWindow <= 0 {
		s.mfa.StepUpWindow = 10 * time.Minute
	}
	if len(d.Config.Peppers) > 0 {
		ids := make([]string, len(d.Config.Peppers))
		keys := make([][]byte, len(d.Config.Peppers))
		for i, p := range d.Config.Peppers {
			ids[i], keys[i] = p.ID, p.Key
		}
		if s.keyring, err = mfa.NewKeyring(ids, keys); err != nil {
			s.log.Error("TOTP secrets cannot be encrypted", "error", err.Error())
		}
	}
	return s
}

// allow applies rate limits; Redis trouble fails open (logged).
func (s *Service) allow(ctx context.Context, lockAccount string, rules ...ratelimit.Rule) error {
	wait, err := s.limiter.Allow(ctx, lockAccount, rules...)
	if err != nil {
		s.log.Warn("rate limiter unavailable, allowing request", "error", err.Error())
		return nil
	}
	if wait > 0 {
		return tooMany(wait)
	}
	return nil
}

// AdmitHashing reserves a place for a request that will hash a password
// (password.Hasher.Admit): false means every slot and queue place is taken
// and the request is to be shed with ErrBusy. After true, call DoneHashing.
func (s *Service) AdmitHashing() bool { return s.hasher.Admit() }

// DoneHashing gives back the place AdmitHashing reserved.
func (s *Service) DoneHashing() { s.hasher.Leave() }

// BusyRetryAfter is the Retry-After of an ErrBusy answer: the expected time
// until the requests already admitted are hashed, jittered
// (password.Hasher.RetryAfter).
func (s *Service) BusyRetryAfter() time.Duration { return s.hasher.RetryAfter() }

func hashErr(err error) error {
	if errors.Is(err, password.ErrBusy) {
		return ErrBusy
	}
	return err
}

// render renders an email for the outbox.
func render(kind string, data mail.Data) (store.Mail, error) {
	r, err := mail.Render(kind, data)
	if err != nil {
		return store.Mail{}, fmt.Errorf("rendering %s email: %w", kind, err)
	}
	return store.Mail{Kind: kind, Subject: r.Subject, Text: r.Text, HTML: r.HTML}, nil
}

func who(c Client) store.Who { return store.Who{IP: c.IP, UserAgent: c.UserAgent} }

// factorChecked counts a second-factor check whose outcome err is (nil:
// ok, ErrInvalidCode: invalid; anything else is not a verdict).
func (s *Service) factorChecked(method string, err error) {
	if s.factors == nil {
		return
	}
	switch {
	case err == nil:
		s.factors.SecondFactor(method, "ok")
	case errors.Is(err, ErrInvalidCode):
		s.factors.SecondFactor(method, "invalid")
	}
}

func (s *Service) queued() {
	if s.emails != nil {
		s.emails.EmailEvent("QUEUED")
	}
	if s.mailer != nil {
		s.mailer.Notify()
	}
}
