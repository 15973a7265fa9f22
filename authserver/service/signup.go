package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/mail"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

func (s *Service) queueVerify(ctx context.Context, q store.DBTX, c Client, u store.User) error {
	tok, err := s.newEmailToken(ctx, q, u.ID, store.PurposeVerify, s.verify)
	if err != nil {
		return err
	}
	if err := s.queue(ctx, q, mail.KindVerify, u.Email, mail.Data{Link: s.links.Verify(tok), ValidFor: mail.HumanDuration(s.verify)}); err != nil {
		return err
	}
	return s.audit.Record(ctx, q, audit.VerifySent, u.ID, c, nil)
}

// Signup registers an account and queues a verification email. For an
// address that already has an account it does the same work (including the
// password hash) and queues an "account exists" email instead, so the
// response and its timing do not tell whether the address is registered.
func (s *Service) Signup(ctx context.Context, c Client, emailIn, pw string) error {
	email, ok := NormalizeEmail(emailIn)
	if !ok {
		return ErrInvalidEmail
	}
	if err := password.Validate(pw); err != nil {
		return invalidPassword(err)
	}
	if err := s.allow(ctx, "",
		ratelimit.Rule{Name: "signup-ip", Key: c.IP, Limit: s.limits.SignupIP},
		ratelimit.Rule{Name: "signup-account", Key: ratelimit.AccountKey(email), Limit: s.limits.SignupAccount}); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return hashErr(err)
	}
	err = s.store.InTx(ctx, func(tx store.DBTX) error {
		u, inserted, err := store.InsertUser(ctx, tx, email, hash)
		if err != nil {
			return err
		}
		if inserted {
			if err := s.audit.Record(ctx, tx, audit.Signup, u.ID, c, nil); err != nil {
				return err
			}
			return s.queueVerify(ctx, tx, c, u)
		}
		if !u.EmailVerified {
			// Never verified: the owner may have lost the first email.
			// The stored password is kept; a reset can change it.
			return s.queueVerify(ctx, tx, c, u)
		}
		if err := s.audit.Record(ctx, tx, audit.Signup, u.ID, c, map[string]any{"existing_account": true}); err != nil {
			return err
		}
		return s.queue(ctx, tx, mail.KindAccountExists, u.Email, mail.Data{LoginLink: s.links.Login(), ResetLink: s.links.ForgotPassword()})
	})
	if err != nil {
		return fmt.Errorf("signing up: %w", err)
	}
	s.queued()
	return nil
}

// VerifyEmail consumes a verification token and marks the address verified.
func (s *Service) VerifyEmail(ctx context.Context, c Client, tok string) error {
	h, ok := session.HashToken(tok)
	if !ok {
		return ErrInvalidToken
	}
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		uid, err := store.ConsumeEmailToken(ctx, tx, store.PurposeVerify, h[:])
		if err != nil {
			return err
		}
		if err := store.MarkEmailVerified(ctx, tx, uid); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.EmailVerified, uid, c, nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("verifying email: %w", err)
	}
	return nil
}

func (s *Service) emailLimits(ctx context.Context, c Client, email string) error {
	return s.allow(ctx, "",
		ratelimit.Rule{Name: "email-ip", Key: c.IP, Limit: s.limits.EmailIP},
		ratelimit.Rule{Name: "email-account", Key: ratelimit.AccountKey(email), Limit: s.limits.EmailAccount})
}

// ResendVerification queues a new verification email if the address has an
// unverified account; the caller answers the same either way.
func (s *Service) ResendVerification(ctx context.Context, c Client, emailIn string) error {
	email, ok := NormalizeEmail(emailIn)
	if !ok {
		return ErrInvalidEmail
	}
	if err := s.emailLimits(ctx, c, email); err != nil {
		return err
	}
	sent := false
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		u, err := store.UserByEmail(ctx, tx, email)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.EmailVerified) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := store.InvalidateEmailTokens(ctx, tx, u.ID, store.PurposeVerify); err != nil {
			return err
		}
		sent = true
		return s.queueVerify(ctx, tx, c, u)
	})
	if err != nil {
		return fmt.Errorf("resending verification: %w", err)
	}
	if sent {
		s.queued()
	}
	return nil
}
