// Package audit names the audit events and records them: a row in
// audit_logs (in the caller's transaction) and auth_events_total{kind}.
package audit

import (
	"context"

	"github.com/leanauth/authstack/authserver/store"
)

// Kinds of audit events.
const (
	Signup                 = "SIGNUP"
	VerifySent             = "VERIFY_SENT"
	EmailVerified          = "EMAIL_VERIFIED"
	LoginSuccess           = "LOGIN_SUCCESS"
	LoginFail              = "LOGIN_FAIL"
	Lockout                = "LOCKOUT"
	Logout                 = "LOGOUT"
	PasswordResetRequested = "PASSWORD_RESET_REQUESTED"
	PasswordReset          = "PASSWORD_RESET"
	PasswordChanged        = "PASSWORD_CHANGED"
	SessionRevoked         = "SESSION_REVOKED"
	PasskeyRegistered      = "PASSKEY_REGISTERED"
	PasskeyRenamed         = "PASSKEY_RENAMED"
	PasskeyRemoved         = "PASSKEY_REMOVED"
	PasskeyCloneWarning    = "PASSKEY_CLONE_WARNING" // a counter that did not move forward: refused
	MFAChallenge           = "MFA_CHALLENGE"         // the password was right; a second factor (or its enrolment) is asked for
	MFAFail                = "MFA_FAIL"              // a wrong second factor
	MFAEnrolled            = "MFA_ENROLLED"
	MFARemoved             = "MFA_REMOVED"
	MFAReset               = "MFA_RESET" // an administrator removed every second factor (authserver factors-reset)
	RecoveryCodeUsed       = "RECOVERY_CODE_USED"
	RecoveryCodesReplaced  = "RECOVERY_CODES_REGENERATED"
	Reauthenticated        = "REAUTHENTICATED"
)

// Counter counts events for metrics.
type Counter interface{ AuthEvent(kind string) }

// Recorder writes audit rows.
type Recorder struct {
	counter Counter
}

// NewRecorder returns a Recorder counting into c (may be nil).
func NewRecorder(c Counter) *Recorder { return &Recorder{counter: c} }

// Client describes who made the request.
type Client struct {
	IP        string
	UserAgent string
}

// Record inserts one audit row with q (a transaction or the pool). The
// metric is counted only once the row is written.
func (r *Recorder) Record(ctx context.Context, q store.DBTX, kind, userID string, c Client, details map[string]any) error {
	err := store.InsertAudit(ctx, q, store.AuditEntry{UserID: userID, Kind: kind, IP: c.IP, UserAgent: c.UserAgent, Details: details})
	if err == nil && r.counter != nil {
		r.counter.AuthEvent(kind)
	}
	return err
}

// Count counts events whose rows were written by a statement of the store
// (the single-statement flows), not by Record.
func (r *Recorder) Count(kinds ...string) {
	if r.counter == nil {
		return
	}
	for _, k := range kinds {
		r.counter.AuthEvent(k)
	}
}
