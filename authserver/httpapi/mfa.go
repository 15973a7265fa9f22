package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
)

// Second factors: the second step of a login, enrolment (with a session,
// or with an enroll challenge when a factor is required), removal,
// recovery codes and re-authentication (step-up).

// writeChallenge answers the password step when a second factor (or its
// enrolment) must follow: 202, no cookie, no session.
func (s *Server) writeChallenge(w http.ResponseWriter, ch *service.Challenge) {
	status := "mfa_required"
	if ch.Purpose == service.PurposeEnroll {
		status = "mfa_enrollment_required"
	}
	b, _ := json.Marshal(map[string]any{"status": status, "challenge": ch.Token, "expires_at": ch.ExpiresAt, "methods": nonNil(ch.Methods)})
	writeJSONBytes(w, http.StatusAccepted, append(b, '\n'))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) loginSecondFactor(w http.ResponseWriter, r *http.Request) {
	var req secondFactorRequest
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.svc.LoginWithCode(r.Context(), s.client(r), req.Challenge, req.Method, req.Code)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeSession(w, res)
}

func (s *Server) mfaStatus(w http.ResponseWriter, r *http.Request, cur session.Info) {
	st, err := s.svc.Status(r.Context(), cur)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, _ := json.Marshal(map[string]any{
		"totp":                     map[string]bool{"enabled": st.Factors.TOTP},
		"passkeys":                 st.Factors.Passkeys,
		"recovery_codes_remaining": st.Factors.RecoveryCodes,
		"methods_offered":          st.Methods,
		"required":                 st.Required,
	})
	writeJSONBytes(w, http.StatusOK, append(b, '\n'))
}

func writeKey(w http.ResponseWriter, k service.TOTPKey) {
	b, _ := json.Marshal(map[string]string{"secret": k.Secret, "otpauth_uri": k.URI, "qr_png": k.QRPNG})
	writeJSONBytes(w, http.StatusOK, append(b, '\n'))
}

func (s *Server) enrollTOTP(w http.ResponseWriter, r *http.Request, cur session.Info) {
	k, err := s.svc.EnrollTOTP(r.Context(), cur)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeKey(w, k)
}

func (s *Server) enrollTOTPWithChallenge(w http.ResponseWriter, r *http.Request) {
	var req challengeRequest
	if !s.decode(w, r, &req) {
		return
	}
	k, err := s.svc.EnrollTOTPWithChallenge(r.Context(), req.Challenge)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeKey(w, k)
}

func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request, cur session.Info) {
	var req codeRequest
	if !s.decode(w, r, &req) {
		return
	}
	codes, info, err := s.svc.ConfirmTOTP(r.Context(), s.client(r), cur, req.Code)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, _ := json.Marshal(map[string]any{"recovery_codes": nonNil(codes), "auth_level": info.Level, "auth_time": info.AuthAt})
	writeJSONBytes(w, http.StatusOK, append(b, '\n'))
}

// confirmTOTPWithChallenge answers like a login (token, cookie) plus the
// recovery codes.
func (s *Server) confirmTOTPWithChallenge(w http.ResponseWriter, r *http.Request) {
	var req challengeCodeRequest
	if !s.decode(w, r, &req) {
		return
	}
	codes, res, err := s.svc.ConfirmTOTPWithChallenge(r.Context(), s.client(r), req.Challenge, req.Code)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeSessionWithCodes(w, res, codes)
}

// writeSessionWithCodes answers an enrolment that opened a session: the
// session as writeSession, with the recovery codes to show once.
func (s *Server) writeSessionWithCodes(w http.ResponseWriter, res service.LoginResult, codes []string) {
	s.setCookie(w, res)
	b, _ := json.Marshal(map[string]any{"recovery_codes": nonNil(codes), "token": res.Token, "expires_at": res.Session.ExpiresAt,
		"user": map[string]any{"id": res.Session.UserID, "email": res.Session.Email, "email_verified": res.Session.EmailVerified}})
	writeJSONBytes(w, http.StatusOK, append(b, '\n'))
}

func (s *Server) removeTOTP(w http.ResponseWriter, r *http.Request, cur session.Info) {
	if err := s.svc.RemoveTOTP(r.Context(), s.client(r), cur); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request, cur session.Info) {
	codes, err := s.svc.RegenerateRecoveryCodes(r.Context(), s.client(r), cur)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, _ := json.Marshal(map[string]any{"recovery_codes": codes})
	writeJSONBytes(w, http.StatusOK, append(b, '\n'))
}

func (s *Server) reauthenticate(w http.ResponseWriter, r *http.Request, cur session.Info) {
	var req reauthRequest
	if !s.decode(w, r, &req) {
		return
	}
	info, err := s.svc.Reauthenticate(r.Context(), s.client(r), cur, service.ReauthRequest{Password: req.Password, Method: req.Method, Code: req.Code})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, _ := json.Marshal(map[string]any{"auth_level": info.Level, "auth_time": info.AuthAt})
	writeJSONBytes(w, http.StatusOK, append(b, '\n'))
}

// appendAuthUnix appends the session's authentication time in Unix seconds.
func appendAuthUnix(b []byte, cur session.Info) []byte {
	return strconv.AppendInt(b, cur.AuthAt.Unix(), 10)
}
