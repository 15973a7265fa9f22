// Package service holds the rules of the authserver: signup, verification,
// login, sessions and password recovery. Handlers decode, call one method
// and encode; everything that matters happens here.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/mail"
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

// Service implements the auth rules.
type Service struct {
	store    *store.Store
	hasher   *password.Hasher
	sessions *session.Manager
	limiter  *ratelimit.Limiter
	audit    *audit.Recorder
	mailer   Notifier
	emails   EmailCounter
	links    mail.Links
	limits   config.RateLimits
	verify   time.Duration
	reset    time.Duration
	log      *slog.Logger
}

// Deps are the parts a Service is built from.
type Deps struct {
	Store    *store.Store
	Hasher   *password.Hasher
	Sessions *session.Manager
	Limiter  *ratelimit.Limiter
	Audit    *audit.Recorder
	Mailer   Notifier
	Emails   EmailCounter
	Config   *config.Config
	Logger   *slog.Logger
}

// New returns a Service.
func New(d Deps) *Service {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Service{
		store: d.Store, hasher: d.Hasher, sessions: d.Sessions, limiter: d.Limiter, audit: d.Audit,
		mailer: d.Mailer, emails: d.Emails, links: mail.Links{Base: d.Config.FrontendURL},
		limits: d.Config.RateLimits, verify: d.Config.VerifyTokenTTL, reset: d.Config.ResetTokenTTL, log: d.Logger,
	}
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

func hashErr(err error) error {
	if errors.Is(err, password.ErrBusy) {
		return ErrBusy
	}
	return err
}

// queue renders and stores an email in the outbox within q. A message
// whose link carries a token expires with the token: the worker gives up
// on it rather than send a dead link.
func (s *Service) queue(ctx context.Context, q store.DBTX, kind, to string, data mail.Data) error {
	r, err := mail.Render(kind, data)
	if err != nil {
		return err
	}
	var expires time.Time
	switch kind {
	case mail.KindVerify:
		expires = time.Now().Add(s.verify)
	case mail.KindReset:
		expires = time.Now().Add(s.reset)
	}
	_, err = store.InsertOutbox(ctx, q, store.OutboxMessage{Kind: kind, To: to, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Expires: expires})
	if err != nil {
		return fmt.Errorf("queueing %s email: %w", kind, err)
	}
	return nil
}

func (s *Service) queued() {
	if s.emails != nil {
		s.emails.EmailEvent("QUEUED")
	}
	if s.mailer != nil {
		s.mailer.Notify()
	}
}

// newEmailToken stores a fresh single-use token for user and returns it.
func (s *Service) newEmailToken(ctx context.Context, q store.DBTX, userID, purpose string, ttl time.Duration) (string, error) {
	tok, h := session.NewToken()
	if err := store.InsertEmailToken(ctx, q, userID, purpose, h[:], ttl); err != nil {
		return "", fmt.Errorf("storing %s token: %w", purpose, err)
	}
	return tok, nil
}
