package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/mail"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// Signup registers an account and queues a verification email whose token
// carries this signup's password: verifying activates that password and no
// other (a second signer of an unverified address cannot plant one). For an
// address that already has a verified account it queues an "account exists"
// email instead. Every branch hashes, renders both emails and runs one
// statement, so neither the response nor its timing tells them apart.
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
	tok, th := session.NewToken()
	verify, err := render(mail.KindVerify, mail.Data{Link: s.links.Verify(tok), ValidFor: mail.HumanDuration(s.verify)})
	if err != nil {
		return err
	}
	exists, err := render(mail.KindAccountExists, mail.Data{LoginLink: s.links.Login(), ResetLink: s.links.ForgotPassword()})
	if err != nil {
		return err
	}
	r, err := store.Signup(ctx, s.store.Pool, email, hash, th[:], s.verify, verify, exists, who(c))
	if err != nil {
		return fmt.Errorf("signing up: %w", err)
	}
	switch {
	case r.Inserted:
		s.audit.Count(audit.Signup, audit.VerifySent)
	case r.Verified:
		s.audit.Count(audit.Signup)
	default:
		s.audit.Count(audit.VerifySent)
	}
	s.queued()
	return nil
}

// VerifyEmail consumes a verification token, marks the address verified and
// activates the password chosen with that token; a token of an account that
// is already verified is refused. It ends every other email link of the
// account (other verification links carry other passwords).
func (s *Service) VerifyEmail(ctx context.Context, c Client, tok string) error {
	h, ok := session.HashToken(tok)
	if !ok {
		return ErrInvalidToken
	}
	if err := s.tokenLimit(ctx, c); err != nil {
		return err
	}
	uid, err := store.EmailTokenUser(ctx, s.store.Pool, store.PurposeVerify, h[:])
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("verifying email: %w", err)
	}
	err = s.store.InTx(ctx, func(tx store.DBTX) error {
		u, err := store.LockUser(ctx, tx, uid)
		if err != nil {
			return err
		}
		if u.EmailVerified {
			// Verifying ended every link; this one was written by a signup
			// that raced the verification (or a reset) and must not replace
			// the owner's password.
			return store.ErrNotFound
		}
		pending, err := store.ConsumeEmailToken(ctx, tx, store.PurposeVerify, h[:], uid)
		if err != nil {
			return err
		}
		// Tokens from before migration 0002 carry no password: the stored one stays.
		if pending != "" && pending != u.PasswordHash {
			if err := store.UpdatePasswordHash(ctx, tx, uid, pending); err != nil {
				return err
			}
		}
		if err := store.MarkEmailVerified(ctx, tx, uid); err != nil {
			return err
		}
		if err := store.EndEmailTokens(ctx, tx, uid); err != nil {
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

// emailLimits applies the per-client limit shared by resend-verification
// and forgot, and the per-address limit of this kind of email: each kind
// counts apart, so that requests of one kind (resends for a verified
// address, which send nothing) never spend the owner's password resets.
func (s *Service) emailLimits(ctx context.Context, c Client, email, kind string) error {
	return s.allow(ctx, "",
		ratelimit.Rule{Name: "email-ip", Key: c.IP, Limit: s.limits.EmailIP},
		ratelimit.Rule{Name: "email-account-" + kind, Key: ratelimit.AccountKey(email), Limit: s.limits.EmailAccount})
}

// tokenLimit is the per-client limit of the endpoints that take an email
// token (verify-email, password reset): guessing tokens costs requests.
func (s *Service) tokenLimit(ctx context.Context, c Client) error {
	return s.allow(ctx, "", ratelimit.Rule{Name: "token-ip", Key: c.IP, Limit: s.limits.TokenIP})
}

// linkEmail is the common start of the requests that name only an address
// (resend-verification, forgot): the address normalised, the email limits
// applied, and the email rendered with a fresh link token valid for ttl,
// before the address is looked up, so every branch does the same work.
func (s *Service) linkEmail(ctx context.Context, c Client, emailIn, kind string, link func(token string) string, ttl time.Duration) (string, [32]byte, store.Mail, error) {
	email, ok := NormalizeEmail(emailIn)
	if !ok {
		return "", [32]byte{}, store.Mail{}, ErrInvalidEmail
	}
	if err := s.emailLimits(ctx, c, email, kind); err != nil {
		return "", [32]byte{}, store.Mail{}, err
	}
	tok, th := session.NewToken()
	m, err := render(kind, mail.Data{Link: link(tok), ValidFor: mail.HumanDuration(ttl)})
	return email, th, m, err
}

// ResendVerification queues a new verification email if the address has an
// unverified account; the caller answers the same either way, and every
// branch renders the email and runs the same one statement.
func (s *Service) ResendVerification(ctx context.Context, c Client, emailIn string) error {
	email, th, m, err := s.linkEmail(ctx, c, emailIn, mail.KindVerify, s.links.Verify, s.verify)
	if err != nil {
		return err
	}
	sent, err := store.ResendVerification(ctx, s.store.Pool, email, th[:], s.verify, m, who(c))
	if err != nil {
		return fmt.Errorf("resending verification: %w", err)
	}
	if sent {
		s.audit.Count(audit.VerifySent)
		s.queued()
	}
	return nil
}
