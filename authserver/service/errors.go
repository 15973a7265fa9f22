package service

import (
	"fmt"
	"net/http"
	"time"
)

// Error is a failure the client is told about: an HTTP status, a stable
// machine code and a message that is safe to show.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The client-facing errors of the service.
var (
	ErrInvalidEmail       = &Error{Status: http.StatusBadRequest, Code: "invalid_email", Message: "email address is not valid"}
	ErrInvalidToken       = &Error{Status: http.StatusBadRequest, Code: "invalid_token", Message: "token is invalid, used or expired"}
	ErrInvalidCredentials = &Error{Status: http.StatusUnauthorized, Code: "invalid_credentials", Message: "email or password is incorrect"}
	ErrUnauthorized       = &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "a valid session is required"}
	ErrEmailNotVerified   = &Error{Status: http.StatusForbidden, Code: "email_not_verified", Message: "verify your email address before signing in"}
	ErrSessionNotFound    = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "session not found"}
	// ErrBusy's Retry-After is worked out per answer: Service.BusyRetryAfter.
	ErrBusy             = &Error{Status: http.StatusServiceUnavailable, Code: "busy", Message: "server is busy, retry shortly"}
	ErrInvalidCode      = &Error{Status: http.StatusUnauthorized, Code: "invalid_code", Message: "the code is incorrect or was already used"}
	ErrInvalidChallenge = &Error{Status: http.StatusUnauthorized, Code: "invalid_challenge", Message: "the login challenge is invalid, used or expired: sign in again"}
	ErrReauthRequired   = &Error{Status: http.StatusForbidden, Code: "reauthentication_required", Message: "authenticate again (POST /auth/reauthenticate) and retry"}
	ErrLevelTooLow      = &Error{Status: http.StatusForbidden, Code: "insufficient_auth_level", Message: "this session must authenticate with a second factor"}
	ErrMFARequired      = &Error{Status: http.StatusForbidden, Code: "mfa_required", Message: "this account has a second factor: authenticate with it"}
	ErrMethodNotAllowed = &Error{Status: http.StatusBadRequest, Code: "mfa_method_not_allowed", Message: "this method cannot be used here"}
	ErrAlreadyEnrolled  = &Error{Status: http.StatusConflict, Code: "already_enrolled", Message: "this factor is already enrolled: remove it first"}
	ErrNotEnrolled      = &Error{Status: http.StatusNotFound, Code: "not_enrolled", Message: "no such factor is enrolled"}
	ErrUnavailable      = &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "a backing service is unavailable, retry shortly", RetryAfter: 2 * time.Second}
)

func invalidPassword(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_password", Message: err.Error()}
}

func tooMany(wait time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message: fmt.Sprintf("too many attempts, retry in %d seconds", int(wait/time.Second)), RetryAfter: wait}
}
