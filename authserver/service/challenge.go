package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// Second-factor methods, as clients name them.
const (
	MethodTOTP         = "totp"
	MethodRecoveryCode = "recovery_code"
	MethodPasskey      = "passkey"
)

// Challenge purposes (Challenge.Purpose).
const (
	PurposeMFA    = store.ChallengeMFA    // completes with a second factor
	PurposeEnroll = store.ChallengeEnroll // completes only by enrolling one
)

// maxChallengeAttempts is how many second factors one challenge may try;
// each attempt is claimed before the factor is checked. Every wrong one
// also counts towards the client's lockout of the account.
const maxChallengeAttempts = 5

// ChallengeInfo is a live challenge as the second step sees it.
type ChallengeInfo struct {
	ID        string
	UserID    string
	Email     string
	Purpose   string   // store.ChallengeMFA or store.ChallengeEnroll
	Methods   []string // mfa: the user's factors now; enroll: the methods offered
	ExpiresAt time.Time
}

// methodsOf lists the factors f offers for a second step.
func methodsOf(f store.Factors) []string {
	var m []string
	if f.TOTP {
		m = append(m, MethodTOTP)
	}
	if f.Passkeys > 0 {
		m = append(m, MethodPasskey)
	}
	if f.RecoveryCodes > 0 {
		m = append(m, MethodRecoveryCode)
	}
	return m
}

// newChallenge stores a challenge for u (inside tx, under u's lock): mfa
// when u has a factor, enroll otherwise (the policy requires one).
func (s *Service) newChallenge(ctx context.Context, tx store.DBTX, c Client, u store.User, f store.Factors) (*Challenge, error) {
	ch := &Challenge{Purpose: store.ChallengeMFA, Methods: methodsOf(f)}
	if !f.Any() {
		ch.Purpose, ch.Methods = store.ChallengeEnroll, append([]string(nil), s.mfa.Methods...)
	}
	tok, h := session.NewToken()
	exp, err := store.InsertChallenge(ctx, tx, h[:], u.ID, ch.Purpose, u.PasswordHash, s.mfa.ChallengeTTL)
	if err != nil {
		return nil, fmt.Errorf("storing login challenge: %w", err)
	}
	ch.Token, ch.ExpiresAt = tok, exp.UTC().Truncate(time.Second)
	return ch, s.audit.Record(ctx, tx, audit.MFAChallenge, u.ID, c, map[string]any{"purpose": ch.Purpose})
}

// Challenge returns a live challenge (unused, unexpired, attempts left,
// the user's password unchanged) without consuming it; ErrInvalidChallenge
// otherwise. The passkeys flow reads the user of a challenge with it.
func (s *Service) Challenge(ctx context.Context, token string) (ChallengeInfo, error) {
	h, ok := session.HashToken(token)
	if !ok {
		return ChallengeInfo{}, ErrInvalidChallenge
	}
	ch, err := store.LiveChallenge(ctx, s.store.Pool, h[:], maxChallengeAttempts)
	if errors.Is(err, store.ErrNotFound) {
		return ChallengeInfo{}, ErrInvalidChallenge
	}
	if err != nil {
		return ChallengeInfo{}, fmt.Errorf("reading login challenge: %w", err)
	}
	out := ChallengeInfo{ID: ch.ID, UserID: ch.UserID, Email: ch.Email, Purpose: ch.Purpose,
		ExpiresAt: ch.ExpiresAt.UTC().Truncate(time.Second)}
	f, err := store.UserFactors(ctx, s.store.Pool, ch.UserID)
	if err != nil {
		return ChallengeInfo{}, fmt.Errorf("reading factors: %w", err)
	}
	if ch.Purpose == store.ChallengeEnroll {
		// It stands in for a factor only while the user has none: one
		// taken before the owner enrolled must not add a second one.
		if f.Any() {
			return ChallengeInfo{}, ErrInvalidChallenge
		}
		out.Methods = append([]string(nil), s.mfa.Methods...)
		return out, nil
	}
	out.Methods = methodsOf(f)
	return out, nil
}

// attempt runs one try at a challenge: the rate limits and this client's
// lock on the account, then one attempt claimed on the challenge (so that
// parallel tries never exceed maxChallengeAttempts), then check. A check
// answering ErrInvalidCode counts as a failure (lockout, audit MFA_FAIL).
func (s *Service) attempt(ctx context.Context, c Client, ch ChallengeInfo, method string, check func(ctx context.Context, userID string) error) error {
	lock, err := s.loginLimits(ctx, c, ch.Email)
	if err != nil {
		return err
	}
	if err := s.claimAttempt(ctx, ch); err != nil {
		return err
	}
	err = check(ctx, ch.UserID)
	s.factorChecked(method, err)
	if err != nil {
		if errors.Is(err, ErrInvalidCode) {
			s.failed(ctx, c, lock, ch.UserID, audit.MFAFail, map[string]any{"method": method})
		}
		return err
	}
	s.loginSucceeded(ctx, lock)
	return nil
}

// loginLimits applies login's limits and this client's lock on the account
// of email (normalised) and returns the lock's key, for RecordFailure.
func (s *Service) loginLimits(ctx context.Context, c Client, email string) (string, error) {
	acct := ratelimit.AccountKey(email)
	lock := ratelimit.Pair(acct, c.IP)
	return lock, s.allow(ctx, lock,
		ratelimit.Rule{Name: "login-ip", Key: c.IP, Limit: s.limits.LoginIP},
		ratelimit.Rule{Name: "login-account", Key: acct, Limit: s.limits.LoginAccount})
}

// claimAttempt counts one attempt on ch; ErrInvalidChallenge when it has
// none left (or died meanwhile).
func (s *Service) claimAttempt(ctx context.Context, ch ChallengeInfo) error {
	err := store.ClaimChallengeAttempt(ctx, s.store.Pool, ch.ID, maxChallengeAttempts)
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidChallenge
	}
	if err != nil {
		return fmt.Errorf("claiming a challenge attempt: %w", err)
	}
	return nil
}

// CompleteLogin is the second step of a login: verify checks the factor
// named by method for the challenge's user and answers ErrInvalidCode when
// it is wrong (counted: challenge attempt, lockout, audit). On success the
// challenge is consumed and a session at session.LevelMFA opened in one
// transaction, under the user's lock, only while the password is still the
// one the first step verified. Only a method the user has enrolled is
// accepted (ErrMethodNotAllowed), and only for an mfa challenge.
func (s *Service) CompleteLogin(ctx context.Context, c Client, challenge, method string, verify func(ctx context.Context, userID string) error) (LoginResult, error) {
	ch, err := s.Challenge(ctx, challenge)
	if err != nil {
		return LoginResult{}, err
	}
	if ch.Purpose != store.ChallengeMFA || !contains(ch.Methods, method) {
		return LoginResult{}, ErrMethodNotAllowed
	}
	if err := s.attempt(ctx, c, ch, method, verify); err != nil {
		return LoginResult{}, err
	}
	s.hook("complete-login")
	return s.finish(ctx, c, ch, method, nil)
}

// CompleteEnrollment completes an enroll challenge (a factor is required
// and the user has none): enroll stores the new factor inside the
// transaction that consumes the challenge and opens a session at
// session.LevelMFA. The passkeys flow calls it after a registration made
// with the challenge; TOTP through ConfirmTOTPWithChallenge. Like a second
// step it is one attempt at the challenge, under login's limits, and an
// ErrInvalidCode from enroll (a wrong confirmation code) counts as a
// failure: else one challenge could guess a pending secret's codes
// without end.
func (s *Service) CompleteEnrollment(ctx context.Context, c Client, challenge, method string, enroll func(ctx context.Context, tx store.DBTX, userID string) error) (LoginResult, error) {
	ch, err := s.Challenge(ctx, challenge)
	if err != nil {
		return LoginResult{}, err
	}
	if ch.Purpose != store.ChallengeEnroll || !s.mfa.Offers(method) {
		return LoginResult{}, ErrMethodNotAllowed
	}
	lock, err := s.loginLimits(ctx, c, ch.Email)
	if err != nil {
		return LoginResult{}, err
	}
	if err := s.claimAttempt(ctx, ch); err != nil {
		return LoginResult{}, err
	}
	out, err := s.finish(ctx, c, ch, method, enroll)
	if errors.Is(err, ErrInvalidCode) {
		s.failed(ctx, c, lock, ch.UserID, audit.MFAFail, map[string]any{"method": method, "enrollment": true})
	} else if err == nil {
		s.loginSucceeded(ctx, lock)
	}
	return out, err
}

// finish consumes ch and opens the session (after enroll, when given).
func (s *Service) finish(ctx context.Context, c Client, ch ChallengeInfo, method string, enroll func(ctx context.Context, tx store.DBTX, userID string) error) (LoginResult, error) {
	var out LoginResult
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		u, err := store.LockUser(ctx, tx, ch.UserID)
		if err != nil {
			return err
		}
		if err := store.ConsumeChallenge(ctx, tx, ch.ID, u.PasswordHash); err != nil {
			return err
		}
		if enroll != nil {
			// Under the user's lock: no factor was enrolled since
			// Challenge looked (another enrolment challenge, racing).
			f, err := store.UserFactors(ctx, tx, u.ID)
			if err != nil {
				return err
			}
			if f.Any() {
				return store.ErrNotFound // answered ErrInvalidChallenge
			}
			if err := enroll(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		out, err = s.createSession(ctx, tx, c, u, session.LevelMFA, method)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return LoginResult{}, ErrInvalidChallenge
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("completing login: %w", err)
	}
	s.sessions.Cache(ctx, out.Token, out.Session)
	return out, nil
}

func contains(list []string, x string) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}
