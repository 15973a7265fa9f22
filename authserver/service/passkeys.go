package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// Passkeys (WebAuthn) with github.com/go-webauthn/webauthn, which checks
// every signature, origin, rpId, flag and challenge. This file keeps the
// ceremonies' state in PostgreSQL (webauthn_challenges: any replica
// finishes what another began, and the first finish deletes it), the
// credentials (passkeys) and the rules around them. authserver/DESIGN.md,
// "Passkeys", says why each choice was made.

// MaxPasskeys bounds the passkeys of one account.
const MaxPasskeys = 20

// Passkey errors the client is told about.
var (
	ErrPasskeysDisabled = &Error{Status: http.StatusNotFound, Code: "passkeys_disabled", Message: "passkeys are not configured on this server"}
	ErrInvalidPasskey   = &Error{Status: http.StatusBadRequest, Code: "invalid_passkey", Message: "the passkey response is invalid, or its challenge expired or was used"}
	ErrPasskeyExists    = &Error{Status: http.StatusConflict, Code: "passkey_exists", Message: "this passkey is already registered"}
	ErrTooManyPasskeys  = &Error{Status: http.StatusConflict, Code: "too_many_passkeys", Message: fmt.Sprintf("an account can have at most %d passkeys", MaxPasskeys)}
	ErrPasskeyNotFound  = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "passkey not found"}
	ErrPasskeyRefused   = &Error{Status: http.StatusUnauthorized, Code: "invalid_credentials", Message: "the passkey was not accepted"}
	ErrInvalidName      = &Error{Status: http.StatusBadRequest, Code: "invalid_name", Message: "a name has 1 to 64 characters and no control characters"}
)

// PasskeyCounter counts passkey ceremonies (ceremony: register, login,
// second_factor; outcome: ok, fail).
type PasskeyCounter interface {
	PasskeyCeremony(ceremony, outcome string)
}

// newWebAuthn builds the relying party; nil when none is configured.
func newWebAuthn(c config.WebAuthn) (*webauthn.WebAuthn, error) {
	if c.RPID == "" {
		return nil, nil
	}
	timeout := webauthn.TimeoutConfig{Enforce: true, Timeout: c.Timeout, TimeoutUVD: c.Timeout}
	wa, err := webauthn.New(&webauthn.Config{
		RPID: c.RPID, RPDisplayName: c.RPName, RPOrigins: c.Origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("configuring the WebAuthn relying party: %w", err)
	}
	return wa, nil
}

// waUser is an account as go-webauthn sees it.
type waUser struct {
	handle []byte
	name   string
	creds  []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.name }
func (u *waUser) WebAuthnDisplayName() string                { return u.name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func toCredential(p store.Passkey) webauthn.Credential {
	tr := make([]protocol.AuthenticatorTransport, len(p.Transports))
	for i, t := range p.Transports {
		tr[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID: p.CredentialID, PublicKey: p.PublicKey, AttestationType: p.AttestationType, AttestationFormat: p.AttestationFormat,
		Transport: tr,
		Flags: webauthn.CredentialFlags{UserPresent: p.UserPresent, UserVerified: p.UserVerified,
			BackupEligible: p.BackupEligible, BackupState: p.BackupState},
		// CloneWarning starts false: go-webauthn sets it when this
		// assertion's counter does not move forward, which is what a login
		// decides on (the stored flag is for the owner's list).
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount,
			Attachment: protocol.AuthenticatorAttachment(p.Attachment)},
	}
}

// loadWAUser reads the user handle and the passkeys of this relying party.
func (s *Service) loadWAUser(ctx context.Context, q store.DBTX, userID, name string) (*waUser, []store.Passkey, error) {
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	h, err := store.WebAuthnHandle(ctx, q, userID, fresh)
	if err != nil {
		return nil, nil, err
	}
	ps, err := store.UserPasskeys(ctx, q, userID, s.wa.Config.RPID)
	if err != nil {
		return nil, nil, fmt.Errorf("reading passkeys: %w", err)
	}
	u := &waUser{handle: h, name: name}
	for _, p := range ps {
		u.creds = append(u.creds, toCredential(p))
	}
	return u, ps, nil
}

func challengeHash(b64 string) ([]byte, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil || len(raw) < protocol.MinimumChallengeLength {
		return nil, false
	}
	h := sha256.Sum256(raw)
	return h[:], true
}

// saveCeremony stores the state of a begun ceremony.
func (s *Service) saveCeremony(ctx context.Context, kind, userID, boundTo string, sd *webauthn.SessionData) error {
	h, ok := challengeHash(sd.Challenge)
	if !ok {
		return errors.New("go-webauthn made an unusable challenge")
	}
	data, err := json.Marshal(sd)
	if err != nil {
		return fmt.Errorf("encoding webauthn session: %w", err)
	}
	if err := store.InsertCeremony(ctx, s.store.Pool, h, store.Ceremony{Kind: kind, UserID: userID, BoundTo: boundTo, Data: data}, s.wa.Config.Timeouts.Login.Timeout); err != nil {
		return fmt.Errorf("storing webauthn ceremony: %w", err)
	}
	return nil
}

// takeCeremony consumes the ceremony of the challenge the client answered.
func (s *Service) takeCeremony(ctx context.Context, challenge, kind string) (store.Ceremony, webauthn.SessionData, error) {
	var sd webauthn.SessionData
	h, ok := challengeHash(challenge)
	if !ok {
		return store.Ceremony{}, sd, store.ErrNotFound
	}
	c, err := store.TakeCeremony(ctx, s.store.Pool, h, kind)
	if err != nil {
		return c, sd, err
	}
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return c, sd, fmt.Errorf("decoding webauthn session: %w", err)
	}
	return c, sd, nil
}

func (s *Service) countPasskey(ceremony, outcome string) {
	if s.passkeyCount != nil {
		s.passkeyCount.PasskeyCeremony(ceremony, outcome)
	}
}

// PasskeyName checks and tidies a passkey's name.
func PasskeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return "", ErrInvalidName
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", ErrInvalidName
		}
	}
	return name, nil
}

// BeginPasskeyRegistration starts registering a passkey for the current
// user: the options for navigator.credentials.create. Adding a factor needs
// a recent authentication (step-up). The ceremony is bound to this session.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, cur session.Info) (*protocol.CredentialCreation, error) {
	if err := s.passkeysOffered(); err != nil {
		return nil, err
	}
	if err := s.RequireRecent(ctx, cur); err != nil {
		return nil, err
	}
	return s.beginRegistration(ctx, cur.UserID, cur.Email, cur.ID)
}

// FinishPasskeyRegistration verifies the authenticator's answer to a
// ceremony this session began and stores the passkey; it returns the
// recovery codes to show once when the user had none (see storeRegistration).
func (s *Service) FinishPasskeyRegistration(ctx context.Context, c Client, cur session.Info, name string, credential []byte) (store.Passkey, []string, error) {
	if err := s.passkeysOffered(); err != nil {
		return store.Passkey{}, nil, err
	}
	if err := s.RequireRecent(ctx, cur); err != nil {
		return store.Passkey{}, nil, err
	}
	parsed, sd, name, err := s.takeRegistration(ctx, cur.UserID, cur.ID, name, credential)
	if err != nil {
		return store.Passkey{}, nil, err
	}
	var out store.Passkey
	var codes []string
	err = s.store.InTx(ctx, func(tx store.DBTX) error {
		if err := lockUserAndSession(ctx, tx, cur); err != nil {
			return err
		}
		out, codes, err = s.storeRegistration(ctx, tx, c, cur.UserID, cur.Email, name, parsed, sd)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, session.ErrInvalid) {
		return out, nil, ErrUnauthorized
	}
	return out, codes, s.registered(err)
}

// BeginPasskeyEnrollment starts registering a passkey with an enroll
// challenge of the password step (a second factor is required and the user
// has none); the ceremony is bound to that challenge.
func (s *Service) BeginPasskeyEnrollment(ctx context.Context, challenge string) (*protocol.CredentialCreation, error) {
	if err := s.passkeysOffered(); err != nil {
		return nil, err
	}
	ch, err := s.Challenge(ctx, challenge)
	if err != nil {
		return nil, err
	}
	if ch.Purpose != store.ChallengeEnroll {
		return nil, ErrMethodNotAllowed
	}
	return s.beginRegistration(ctx, ch.UserID, ch.Email, ch.ID)
}

// FinishPasskeyEnrollment stores the passkey, issues recovery codes (the
// user had no factor), consumes the enroll challenge and opens a session at
// session.LevelMFA, in one transaction.
func (s *Service) FinishPasskeyEnrollment(ctx context.Context, c Client, challenge, name string, credential []byte) ([]string, LoginResult, error) {
	if err := s.passkeysOffered(); err != nil {
		return nil, LoginResult{}, err
	}
	ch, err := s.Challenge(ctx, challenge)
	if err != nil {
		return nil, LoginResult{}, err
	}
	parsed, sd, name, err := s.takeRegistration(ctx, ch.UserID, ch.ID, name, credential)
	if err != nil {
		return nil, LoginResult{}, err
	}
	var codes []string
	res, err := s.CompleteEnrollment(ctx, c, challenge, MethodPasskey, func(ctx context.Context, tx store.DBTX, userID string) error {
		var err error
		_, codes, err = s.storeRegistration(ctx, tx, c, userID, ch.Email, name, parsed, sd)
		return err
	})
	return codes, res, s.registered(err)
}

func (s *Service) passkeysOffered() error {
	if s.wa == nil || !s.mfa.Offers(MethodPasskey) {
		return ErrPasskeysDisabled
	}
	return nil
}

// beginRegistration makes the creation options for a user, excluding the
// passkeys the user has (an authenticator then refuses a second one), and
// stores the ceremony bound to boundTo (a session or a login challenge).
func (s *Service) beginRegistration(ctx context.Context, userID, email, boundTo string) (*protocol.CredentialCreation, error) {
	u, ps, err := s.loadWAUser(ctx, s.store.Pool, userID, email)
	if err != nil {
		return nil, fmt.Errorf("beginning passkey registration: %w", err)
	}
	if len(ps) >= MaxPasskeys {
		return nil, ErrTooManyPasskeys
	}
	excl := make([]protocol.CredentialDescriptor, len(u.creds))
	for i := range u.creds {
		excl[i] = u.creds[i].Descriptor()
	}
	creation, sd, err := s.wa.BeginRegistration(u, webauthn.WithExclusions(excl))
	if err != nil {
		return nil, fmt.Errorf("beginning passkey registration: %w", err)
	}
	if err := s.saveCeremony(ctx, store.CeremonyRegister, userID, boundTo, sd); err != nil {
		return nil, err
	}
	return creation, nil
}

// takeRegistration parses the registration response and consumes its
// ceremony, which must be one begun for userID and boundTo.
func (s *Service) takeRegistration(ctx context.Context, userID, boundTo, name string, credential []byte) (*protocol.ParsedCredentialCreationData, webauthn.SessionData, string, error) {
	var sd webauthn.SessionData
	if name == "" {
		name = "Passkey"
	}
	name, err := PasskeyName(name)
	if err != nil {
		return nil, sd, "", err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		s.countPasskey("register", "fail")
		return nil, sd, "", ErrInvalidPasskey
	}
	cer, sd, err := s.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, store.CeremonyRegister)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, sd, "", fmt.Errorf("finishing passkey registration: %w", err)
	}
	if err != nil || cer.UserID != userID || cer.BoundTo != boundTo {
		s.countPasskey("register", "fail")
		return nil, sd, "", ErrInvalidPasskey
	}
	return parsed, sd, name, nil
}

// storeRegistration verifies the response with go-webauthn and stores the
// passkey (inside tx, under the user's lock). When the user is left with no
// unused recovery codes (this is the first factor, or the old codes are
// spent), it issues ten and returns them to show once, as confirming TOTP
// does: a password reset keeps factors, so without them a passkey-only user
// who loses the device could never sign in again.
func (s *Service) storeRegistration(ctx context.Context, tx store.DBTX, c Client, userID, email, name string, parsed *protocol.ParsedCredentialCreationData, sd webauthn.SessionData) (store.Passkey, []string, error) {
	u, ps, err := s.loadWAUser(ctx, tx, userID, email)
	if err != nil {
		return store.Passkey{}, nil, err
	}
	if len(ps) >= MaxPasskeys {
		return store.Passkey{}, nil, ErrTooManyPasskeys
	}
	cred, err := s.wa.CreateCredential(u, sd, parsed)
	if err != nil {
		s.log.Info("passkey registration refused", "user_id", userID, "reason", webauthnReason(err))
		return store.Passkey{}, nil, ErrInvalidPasskey
	}
	p := store.Passkey{
		UserID: userID, RPID: sd.RelyingPartyID, CredentialID: cred.ID, PublicKey: cred.PublicKey,
		SignCount: cred.Authenticator.SignCount, AAGUID: cred.Authenticator.AAGUID,
		AttestationType: cred.AttestationType, AttestationFormat: cred.AttestationFormat,
		Attachment: string(cred.Authenticator.Attachment), UserPresent: cred.Flags.UserPresent,
		UserVerified: cred.Flags.UserVerified, BackupEligible: cred.Flags.BackupEligible,
		BackupState: cred.Flags.BackupState, Name: name,
	}
	for _, t := range cred.Transport {
		p.Transports = append(p.Transports, string(t))
	}
	out, err := store.InsertPasskey(ctx, tx, p)
	if err != nil {
		return out, nil, err
	}
	codes, err := s.IssueRecoveryCodes(ctx, tx, userID, true)
	if err != nil {
		return out, nil, err
	}
	return out, codes, s.audit.Record(ctx, tx, audit.PasskeyRegistered, userID, c, map[string]any{"passkey_id": out.ID})
}

// registered maps the outcome of a registration to what the client is told
// and counts it.
func (s *Service) registered(err error) error {
	var e *Error
	switch {
	case err == nil:
		s.countPasskey("register", "ok")
		return nil
	case errors.Is(err, store.ErrPasskeyExists):
		s.countPasskey("register", "fail")
		return ErrPasskeyExists
	case errors.As(err, &e):
		s.countPasskey("register", "fail")
		return e
	}
	return fmt.Errorf("finishing passkey registration: %w", err)
}

// webauthnReason is go-webauthn's reason for a refusal, for the logs (it
// names what failed, never key material).
func webauthnReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Type + ": " + pe.Details
	}
	return err.Error()
}

// ListPasskeys lists the current user's passkeys, newest first.
func (s *Service) ListPasskeys(ctx context.Context, cur session.Info) ([]store.Passkey, error) {
	ps, err := store.UserPasskeys(ctx, s.store.Pool, cur.UserID, "")
	if err != nil {
		return nil, fmt.Errorf("listing passkeys: %w", err)
	}
	return ps, nil
}

// RenamePasskey renames one of the current user's passkeys.
func (s *Service) RenamePasskey(ctx context.Context, c Client, cur session.Info, id, name string) (store.Passkey, error) {
	name, err := PasskeyName(name)
	if err != nil {
		return store.Passkey{}, err
	}
	if !isUUID(id) {
		return store.Passkey{}, ErrPasskeyNotFound
	}
	var p store.Passkey
	err = s.store.InTx(ctx, func(tx store.DBTX) error {
		if p, err = store.RenamePasskey(ctx, tx, cur.UserID, id, name); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.PasskeyRenamed, cur.UserID, c, map[string]any{"passkey_id": id})
	})
	if errors.Is(err, store.ErrNotFound) {
		return p, ErrPasskeyNotFound
	}
	if err != nil {
		return p, fmt.Errorf("renaming passkey: %w", err)
	}
	return p, nil
}

// RemovePasskey deletes one of the current user's passkeys (step-up
// required, as for every factor change): from then on it logs nobody in (a login that verified it just before finds it gone when
// it writes its session, under the same user lock). The last factor takes
// the recovery codes with it, as RemoveTOTP's does.
func (s *Service) RemovePasskey(ctx context.Context, c Client, cur session.Info, id string) error {
	if !isUUID(id) {
		return ErrPasskeyNotFound
	}
	if err := s.RequireRecent(ctx, cur); err != nil {
		return err
	}
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		if err := lockUserAndSession(ctx, tx, cur); err != nil {
			return err
		}
		if _, err := store.DeletePasskey(ctx, tx, cur.UserID, id); err != nil {
			return err
		}
		if err := endCodesWithoutFactor(ctx, tx, cur.UserID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.PasskeyRemoved, cur.UserID, c, map[string]any{"passkey_id": id})
	})
	if errors.Is(err, session.ErrInvalid) {
		return ErrUnauthorized
	}
	if errors.Is(err, store.ErrNotFound) {
		return ErrPasskeyNotFound
	}
	if err != nil {
		return fmt.Errorf("removing passkey: %w", err)
	}
	return nil
}

// BeginPasskeyLogin starts a login with a discoverable passkey: no email,
// no allowCredentials, the same answer for everyone (nothing to enumerate).
// It is limited per client like the password login (each call stores a row).
func (s *Service) BeginPasskeyLogin(ctx context.Context, c Client) (*protocol.CredentialAssertion, error) {
	if s.wa == nil {
		return nil, ErrPasskeysDisabled
	}
	if err := s.allow(ctx, "", ratelimit.Rule{Name: "login-ip", Key: c.IP, Limit: s.limits.LoginIP}); err != nil {
		return nil, err
	}
	assertion, sd, err := s.wa.BeginDiscoverableLogin()
	if err != nil {
		return nil, fmt.Errorf("beginning passkey login: %w", err)
	}
	if err := s.saveCeremony(ctx, store.CeremonyLogin, "", "", sd); err != nil {
		return nil, err
	}
	return assertion, nil
}

// FinishPasskeyLogin verifies a discoverable assertion and opens a session
// at level passkey. Every refusal is ErrPasskeyRefused.
func (s *Service) FinishPasskeyLogin(ctx context.Context, c Client, credential []byte) (LoginResult, error) {
	if s.wa == nil {
		return LoginResult{}, ErrPasskeysDisabled
	}
	if err := s.allow(ctx, "", ratelimit.Rule{Name: "login-ip", Key: c.IP, Limit: s.limits.LoginIP}); err != nil {
		return LoginResult{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return LoginResult{}, s.passkeyLoginFailed(ctx, c, "", "malformed")
	}
	_, sd, err := s.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, store.CeremonyLogin)
	if errors.Is(err, store.ErrNotFound) {
		return LoginResult{}, s.passkeyLoginFailed(ctx, c, "", "unknown_challenge")
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("finishing passkey login: %w", err)
	}
	var owner store.User
	var keys []store.Passkey
	_, cred, err := s.wa.ValidatePasskeyLogin(func(rawID, handle []byte) (webauthn.User, error) {
		u, h, err := store.UserByWebAuthnHandle(ctx, s.store.Pool, handle)
		if err != nil {
			return nil, err
		}
		owner = u
		wu := &waUser{handle: h, name: u.Email}
		if keys, err = store.UserPasskeys(ctx, s.store.Pool, u.ID, s.wa.Config.RPID); err != nil {
			return nil, err
		}
		for _, p := range keys {
			wu.creds = append(wu.creds, toCredential(p))
		}
		return wu, nil
	}, sd, parsed)
	if err != nil {
		s.log.Info("passkey login refused", "reason", webauthnReason(err))
		return LoginResult{}, s.passkeyLoginFailed(ctx, c, owner.ID, "assertion")
	}
	key, reason := s.checkAssertion(ctx, c, owner.ID, keys, cred)
	if reason != "" {
		return LoginResult{}, s.passkeyLoginFailed(ctx, c, owner.ID, reason)
	}
	if !owner.EmailVerified {
		return LoginResult{}, ErrEmailNotVerified
	}
	out, err := s.openPasskeySession(ctx, c, owner, key, cred)
	if err != nil {
		return LoginResult{}, err
	}
	s.countPasskey("login", "ok")
	return out, nil
}

// checkAssertion finds the stored passkey a verified assertion used and
// refuses a counter that did not move forward (go-webauthn's CloneWarning:
// two copies of the key may exist): the passkey is flagged, for the owner's
// list, and PASSKEY_CLONE_WARNING audited. reason is "" when it passes.
func (s *Service) checkAssertion(ctx context.Context, c Client, userID string, keys []store.Passkey, cred *webauthn.Credential) (store.Passkey, string) {
	var key store.Passkey
	for _, p := range keys {
		if string(p.CredentialID) == string(cred.ID) {
			key = p
		}
	}
	if key.ID == "" {
		return key, "unknown_credential"
	}
	if cred.Authenticator.CloneWarning {
		if err := store.FlagPasskeyClone(ctx, s.store.Pool, key.ID); err != nil {
			s.log.Error("flagging passkey clone", "error", err.Error())
		}
		if err := s.audit.Record(ctx, s.store.Pool, audit.PasskeyCloneWarning, userID, c, map[string]any{"passkey_id": key.ID}); err != nil {
			s.log.Error("writing audit log", "kind", audit.PasskeyCloneWarning, "error", err.Error())
		}
		return key, "sign_count_regressed"
	}
	return key, ""
}

// BeginPasskeySecondFactor makes the options for the second step of a
// login (an mfa challenge of a user with a passkey): allowCredentials are
// that user's passkeys, shown only to whoever got past the password.
// User verification is preferred: the password was the first factor.
func (s *Service) BeginPasskeySecondFactor(ctx context.Context, challenge string) (*protocol.CredentialAssertion, error) {
	if s.wa == nil {
		return nil, ErrPasskeysDisabled
	}
	ch, err := s.Challenge(ctx, challenge)
	if err != nil {
		return nil, err
	}
	if ch.Purpose != store.ChallengeMFA || !contains(ch.Methods, MethodPasskey) {
		return nil, ErrMethodNotAllowed
	}
	return s.beginAssertion(ctx, store.CeremonySecondFactor, ch.UserID, ch.Email, ch.ID, protocol.VerificationPreferred)
}

// FinishPasskeySecondFactor completes the login challenge with an
// assertion of one of its user's passkeys (mfa-totp's CompleteLogin: one
// attempt claimed, failures counted towards the lockout). The ceremony must
// have been begun for this very challenge.
func (s *Service) FinishPasskeySecondFactor(ctx context.Context, c Client, challenge string, credential []byte) (LoginResult, error) {
	if s.wa == nil {
		return LoginResult{}, ErrPasskeysDisabled
	}
	ch, err := s.Challenge(ctx, challenge)
	if err != nil {
		return LoginResult{}, err
	}
	return s.CompleteLogin(ctx, c, challenge, MethodPasskey, s.assertionCheck(c, store.CeremonySecondFactor, ch.ID, credential))
}

// BeginPasskeyReauthentication makes the options for a step-up of the
// current session with one of its user's passkeys (user verification
// required: the session then reaches level passkey).
func (s *Service) BeginPasskeyReauthentication(ctx context.Context, cur session.Info) (*protocol.CredentialAssertion, error) {
	if s.wa == nil {
		return nil, ErrPasskeysDisabled
	}
	return s.beginAssertion(ctx, store.CeremonyReauth, cur.UserID, cur.Email, cur.ID, protocol.VerificationRequired)
}

// FinishPasskeyReauthentication re-authenticates the current session
// (mfa-totp's ReauthenticateWith) with an assertion to a ceremony this
// session began.
func (s *Service) FinishPasskeyReauthentication(ctx context.Context, c Client, cur session.Info, credential []byte) (session.Info, error) {
	if s.wa == nil {
		return session.Info{}, ErrPasskeysDisabled
	}
	return s.ReauthenticateWith(ctx, c, cur, MethodPasskey, session.LevelPasskey, s.assertionCheck(c, store.CeremonyReauth, cur.ID, credential))
}

// beginAssertion makes request options listing userID's passkeys and stores
// the ceremony bound to boundTo.
func (s *Service) beginAssertion(ctx context.Context, kind, userID, email, boundTo string, uv protocol.UserVerificationRequirement) (*protocol.CredentialAssertion, error) {
	u, _, err := s.loadWAUser(ctx, s.store.Pool, userID, email)
	if err != nil {
		return nil, fmt.Errorf("beginning passkey assertion: %w", err)
	}
	if len(u.creds) == 0 {
		return nil, ErrMethodNotAllowed
	}
	assertion, sd, err := s.wa.BeginLogin(u, webauthn.WithUserVerification(uv))
	if err != nil {
		return nil, fmt.Errorf("beginning passkey assertion: %w", err)
	}
	if err := s.saveCeremony(ctx, kind, userID, boundTo, sd); err != nil {
		return nil, err
	}
	return assertion, nil
}

// assertionCheck is the factor check of a second step or a step-up: the
// assertion must answer a ceremony of kind begun for the user and boundTo,
// verify with one of the user's passkeys, and move its counter forward.
// Every refusal is ErrInvalidCode, which the caller counts.
func (s *Service) assertionCheck(c Client, kind, boundTo string, credential []byte) func(ctx context.Context, userID string) error {
	ceremony := "second_factor"
	if kind == store.CeremonyReauth {
		ceremony = "reauthenticate"
	}
	refuse := func(userID, reason string) error {
		s.countPasskey(ceremony, "fail")
		s.log.Info("passkey assertion refused", "ceremony", ceremony, "user_id", userID, "reason", reason)
		return ErrInvalidCode
	}
	return func(ctx context.Context, userID string) error {
		parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
		if err != nil {
			return refuse(userID, "malformed")
		}
		cer, sd, err := s.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, kind)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("verifying passkey: %w", err)
		}
		if err != nil || cer.UserID != userID || cer.BoundTo != boundTo {
			return refuse(userID, "unknown_challenge")
		}
		u, keys, err := s.loadWAUser(ctx, s.store.Pool, userID, "")
		if err != nil {
			return fmt.Errorf("verifying passkey: %w", err)
		}
		cred, err := s.wa.ValidateLogin(u, sd, parsed)
		if err != nil {
			return refuse(userID, webauthnReason(err))
		}
		key, reason := s.checkAssertion(ctx, c, userID, keys, cred)
		if reason != "" {
			return refuse(userID, reason)
		}
		err = store.RecordPasskeyUse(ctx, s.store.Pool, key.ID, cred.Authenticator.SignCount, cred.Flags.UserVerified, cred.Flags.BackupState)
		if errors.Is(err, store.ErrNotFound) {
			return refuse(userID, "removed_or_replayed")
		}
		if err != nil {
			return fmt.Errorf("recording passkey use: %w", err)
		}
		s.countPasskey(ceremony, "ok")
		return nil
	}
}

// openPasskeySession records the passkey's use and opens a session in one
// transaction under the user lock: a passkey removed, or a counter another
// assertion advanced meanwhile, writes nothing and logs nobody in.
func (s *Service) openPasskeySession(ctx context.Context, c Client, u store.User, key store.Passkey, cred *webauthn.Credential) (LoginResult, error) {
	var out LoginResult
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		if _, err := store.LockUser(ctx, tx, u.ID); err != nil {
			return err
		}
		s.hook("passkey-login")
		if err := store.RecordPasskeyUse(ctx, tx, key.ID, cred.Authenticator.SignCount, cred.Flags.UserVerified, cred.Flags.BackupState); err != nil {
			return err
		}
		var err error
		out, err = s.createSession(ctx, tx, c, u, session.LevelPasskey, MethodPasskey)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return out, s.passkeyLoginFailed(ctx, c, u.ID, "removed_or_replayed")
	}
	if err != nil {
		return out, fmt.Errorf("opening passkey session: %w", err)
	}
	s.sessions.Cache(ctx, out.Token, out.Session)
	return out, nil
}

// passkeyLoginFailed audits and counts a refused passwordless login; the
// client only learns ErrPasskeyRefused.
func (s *Service) passkeyLoginFailed(ctx context.Context, c Client, userID, reason string) error {
	s.countPasskey("login", "fail")
	if err := s.audit.Record(ctx, s.store.Pool, audit.LoginFail, userID, c, map[string]any{"method": "passkey", "reason": reason}); err != nil {
		s.log.Error("writing audit log", "kind", audit.LoginFail, "error", err.Error())
	}
	return ErrPasskeyRefused
}
