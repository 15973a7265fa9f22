package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/mfa"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// TOTPKey is a new TOTP secret to show once: its otpauth URI and QR code.
type TOTPKey = mfa.Key

// EnrollTOTP starts a TOTP enrolment for the current user (step-up
// required): a new secret, unconfirmed until ConfirmTOTP. A pending one is
// replaced; a confirmed one must be removed first (ErrAlreadyEnrolled).
func (s *Service) EnrollTOTP(ctx context.Context, cur session.Info) (TOTPKey, error) {
	if err := s.RequireRecent(ctx, cur); err != nil {
		return TOTPKey{}, err
	}
	return s.enrollTOTP(ctx, cur.UserID, cur.Email)
}

// EnrollTOTPWithChallenge starts a TOTP enrolment with an enroll challenge
// (a factor is required and the user has none). Each call uses one of the
// challenge's attempts.
func (s *Service) EnrollTOTPWithChallenge(ctx context.Context, challenge string) (TOTPKey, error) {
	ch, err := s.Challenge(ctx, challenge)
	if err != nil {
		return TOTPKey{}, err
	}
	if ch.Purpose != store.ChallengeEnroll {
		return TOTPKey{}, ErrMethodNotAllowed
	}
	if err := s.claimAttempt(ctx, ch); err != nil {
		return TOTPKey{}, err
	}
	return s.enrollTOTP(ctx, ch.UserID, ch.Email)
}

func (s *Service) enrollTOTP(ctx context.Context, userID, email string) (TOTPKey, error) {
	if !s.mfa.Offers(MethodTOTP) {
		return TOTPKey{}, ErrMethodNotAllowed
	}
	if s.keyring == nil {
		return TOTPKey{}, ErrUnavailable
	}
	key, err := mfa.NewKey(s.mfa.Issuer, email)
	if err != nil {
		return TOTPKey{}, err
	}
	enc, kid := s.keyring.Seal(userID, key.Secret)
	ok, err := store.PutPendingTOTP(ctx, s.store.Pool, userID, enc, kid)
	if err != nil {
		return TOTPKey{}, fmt.Errorf("storing TOTP secret: %w", err)
	}
	if !ok {
		return TOTPKey{}, ErrAlreadyEnrolled
	}
	return key, nil
}

// ConfirmTOTP confirms the pending secret of the current user with a code
// from the authenticator (step-up required). It returns recovery codes when
// the user had none (to show once), and the current session, which now
// counts as authenticated with a second factor.
func (s *Service) ConfirmTOTP(ctx context.Context, c Client, cur session.Info, code string) ([]string, session.Info, error) {
	if err := s.RequireRecent(ctx, cur); err != nil {
		return nil, session.Info{}, err
	}
	var codes []string
	var info session.Info
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		if _, err := store.LockUser(ctx, tx, cur.UserID); err != nil {
			return err
		}
		var err error
		if codes, err = s.confirmTOTP(ctx, tx, c, cur.UserID, code); err != nil {
			return err
		}
		info, err = s.sessions.Reauthenticated(ctx, tx, cur, session.LevelMFA)
		return err
	})
	if errors.Is(err, session.ErrInvalid) || errors.Is(err, store.ErrNotFound) {
		return nil, session.Info{}, ErrUnauthorized
	}
	if err != nil {
		return nil, session.Info{}, fmt.Errorf("confirming TOTP: %w", err)
	}
	s.sessions.Recache(ctx, info)
	return codes, info, nil
}

// ConfirmTOTPWithChallenge confirms the pending secret with an enroll
// challenge: the challenge is consumed and a session opened.
func (s *Service) ConfirmTOTPWithChallenge(ctx context.Context, c Client, challenge, code string) ([]string, LoginResult, error) {
	var codes []string
	out, err := s.CompleteEnrollment(ctx, c, challenge, MethodTOTP, func(ctx context.Context, tx store.DBTX, userID string) error {
		var err error
		codes, err = s.confirmTOTP(ctx, tx, c, userID, code)
		return err
	})
	return codes, out, err
}

// confirmTOTP (inside tx, under the user's lock) checks code against the
// pending secret and confirms it.
func (s *Service) confirmTOTP(ctx context.Context, tx store.DBTX, c Client, userID, code string) ([]string, error) {
	t, err := store.UserTOTP(ctx, tx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, err
	}
	if t.Confirmed {
		return nil, ErrAlreadyEnrolled
	}
	secret, err := s.openSecret(t, userID)
	if err != nil {
		return nil, err
	}
	step, ok, err := mfa.Match(secret, code, time.Now(), 0)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrInvalidCode
	}
	if ok, err := store.ConfirmTOTP(ctx, tx, userID, t.SecretEnc, step); err != nil || !ok {
		if err == nil {
			err = ErrNotEnrolled
		}
		return nil, err
	}
	codes, err := s.IssueRecoveryCodes(ctx, tx, userID, true)
	if err != nil {
		return nil, err
	}
	return codes, s.audit.Record(ctx, tx, audit.MFAEnrolled, userID, c, map[string]any{"method": MethodTOTP})
}

func (s *Service) openSecret(t store.TOTP, userID string) (string, error) {
	if s.keyring == nil {
		return "", ErrUnavailable
	}
	secret, err := s.keyring.Open(t.KeyID, userID, t.SecretEnc)
	if err != nil {
		// A pepper dropped before the secret was re-encrypted: the user
		// can still use a recovery code (docs/authserver.md).
		return "", fmt.Errorf("opening TOTP secret of user %s: %w", userID, err)
	}
	return secret, nil
}

// VerifyTOTP checks a code of the user's confirmed secret and records its
// time step, so the same code (or an older one) is refused afterwards on
// every replica: ErrInvalidCode for a wrong or replayed code. A secret
// still encrypted under an old pepper is re-encrypted under the current.
func (s *Service) VerifyTOTP(ctx context.Context, userID, code string) error {
	t, err := store.UserTOTP(ctx, s.store.Pool, userID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !t.Confirmed {
		return ErrInvalidCode
	}
	if err != nil {
		return fmt.Errorf("reading TOTP secret: %w", err)
	}
	secret, err := s.openSecret(t, userID)
	if err != nil {
		return err
	}
	step, ok, err := mfa.Match(secret, code, time.Now(), t.LastStep)
	if err != nil {
		return err
	}
	if !ok {
		return ErrInvalidCode
	}
	if ok, err := store.AdvanceTOTPStep(ctx, s.store.Pool, userID, step); err != nil {
		return fmt.Errorf("recording TOTP step: %w", err)
	} else if !ok {
		return ErrInvalidCode // another request used this step (or a later one) first
	}
	if t.KeyID != s.keyring.Current() {
		enc, kid := s.keyring.Seal(userID, secret)
		if err := store.ReencryptTOTP(ctx, s.store.Pool, userID, t.KeyID, enc, kid); err != nil {
			s.log.Warn("re-encrypting TOTP secret", "user_id", userID, "error", err.Error())
		}
	}
	return nil
}

// UseRecoveryCode consumes one of the user's recovery codes (each works
// once, also when two requests race): ErrInvalidCode otherwise.
func (s *Service) UseRecoveryCode(ctx context.Context, c Client, userID, code string) error {
	n, ok := mfa.NormalizeRecoveryCode(code)
	if !ok {
		return ErrInvalidCode
	}
	left, err := store.UseRecoveryCode(ctx, s.store.Pool, userID, mfa.HashRecoveryCode(userID, n))
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidCode
	}
	if err != nil {
		return fmt.Errorf("using recovery code: %w", err)
	}
	if err := s.audit.Record(ctx, s.store.Pool, audit.RecoveryCodeUsed, userID, c, map[string]any{"remaining": left}); err != nil {
		s.log.Error("writing audit log", "kind", audit.RecoveryCodeUsed, "error", err.Error())
	}
	return nil
}

// verifier returns the check of a second-factor method of the codes kind
// (TOTP or recovery code); passkeys bring their own.
func (s *Service) verifier(c Client, method, code string) (func(ctx context.Context, userID string) error, error) {
	switch method {
	case MethodTOTP:
		return func(ctx context.Context, userID string) error { return s.VerifyTOTP(ctx, userID, code) }, nil
	case MethodRecoveryCode:
		return func(ctx context.Context, userID string) error { return s.UseRecoveryCode(ctx, c, userID, code) }, nil
	}
	return nil, ErrMethodNotAllowed
}

// LoginWithCode completes a login challenge with a TOTP or recovery code.
func (s *Service) LoginWithCode(ctx context.Context, c Client, challenge, method, code string) (LoginResult, error) {
	verify, err := s.verifier(c, method, code)
	if err != nil {
		return LoginResult{}, err
	}
	return s.CompleteLogin(ctx, c, challenge, method, verify)
}

// RemoveTOTP removes the current user's TOTP secret (step-up required);
// without another factor, the recovery codes go with it.
func (s *Service) RemoveTOTP(ctx context.Context, c Client, cur session.Info) error {
	if err := s.RequireRecent(ctx, cur); err != nil {
		return err
	}
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		if err := lockUserAndSession(ctx, tx, cur); err != nil {
			return err
		}
		ok, err := store.DeleteTOTP(ctx, tx, cur.UserID)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotEnrolled
		}
		if err := endCodesWithoutFactor(ctx, tx, cur.UserID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.MFARemoved, cur.UserID, c, map[string]any{"method": MethodTOTP})
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, session.ErrInvalid) {
		return ErrUnauthorized
	}
	if err != nil && !errors.Is(err, ErrNotEnrolled) {
		return fmt.Errorf("removing TOTP: %w", err)
	}
	return err
}

// endCodesWithoutFactor deletes the user's recovery codes when no second
// factor is left (inside tx, under the user's lock): every factor removal
// calls it, so that old codes do not come back with the next factor, which
// then issues new ones.
func endCodesWithoutFactor(ctx context.Context, tx store.DBTX, userID string) error {
	f, err := store.UserFactors(ctx, tx, userID)
	if err != nil || f.Any() {
		return err
	}
	return store.DeleteRecoveryCodes(ctx, tx, userID)
}

// IssueRecoveryCodes stores new recovery codes for a user (inside tx),
// ending the old ones, and returns them to show once; with onlyIfNone, it
// does nothing (nil) when the user has unused codes (a second factor was
// added: the codes printed for the first still hold).
func (s *Service) IssueRecoveryCodes(ctx context.Context, tx store.DBTX, userID string, onlyIfNone bool) ([]string, error) {
	if onlyIfNone {
		f, err := store.UserFactors(ctx, tx, userID)
		if err != nil {
			return nil, err
		}
		if f.RecoveryCodes > 0 {
			return nil, nil
		}
	}
	codes := mfa.NewRecoveryCodes()
	hashes := make([][]byte, len(codes))
	for i, code := range codes {
		n, _ := mfa.NormalizeRecoveryCode(code)
		hashes[i] = mfa.HashRecoveryCode(userID, n)
	}
	if err := store.ReplaceRecoveryCodes(ctx, tx, userID, hashes); err != nil {
		return nil, fmt.Errorf("storing recovery codes: %w", err)
	}
	return codes, nil
}

// RegenerateRecoveryCodes replaces the current user's recovery codes
// (step-up required; the user must have a factor).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, c Client, cur session.Info) ([]string, error) {
	if err := s.RequireRecent(ctx, cur); err != nil {
		return nil, err
	}
	var codes []string
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		if err := lockUserAndSession(ctx, tx, cur); err != nil {
			return err
		}
		f, err := store.UserFactors(ctx, tx, cur.UserID)
		if err != nil {
			return err
		}
		if !f.Any() {
			return ErrNotEnrolled
		}
		if codes, err = s.IssueRecoveryCodes(ctx, tx, cur.UserID, false); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.RecoveryCodesReplaced, cur.UserID, c, nil)
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, session.ErrInvalid) {
		return nil, ErrUnauthorized
	}
	if err != nil && !errors.Is(err, ErrNotEnrolled) {
		return nil, fmt.Errorf("regenerating recovery codes: %w", err)
	}
	return codes, err
}

// MFAStatus is what the account page shows about second factors.
type MFAStatus struct {
	Factors  store.Factors
	Methods  []string // offered for enrolment
	Required bool
}

// Status returns the current user's factors and the policy.
func (s *Service) Status(ctx context.Context, cur session.Info) (MFAStatus, error) {
	f, err := store.UserFactors(ctx, s.store.Pool, cur.UserID)
	if err != nil {
		return MFAStatus{}, fmt.Errorf("reading factors: %w", err)
	}
	return MFAStatus{Factors: f, Methods: append([]string{}, s.mfa.Methods...), Required: s.mfa.Required}, nil
}
