package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
)

// decode reads and decodes the body of r into dst, writing the 4xx itself.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst validated) bool {
	body, derr := readBody(w, r, s.cfg.MaxBodyBytes)
	if derr == nil {
		derr = DecodeBody(r.Header.Get("Content-Type"), body, dst)
	}
	if derr != nil {
		writeError(w, derr.Status, derr.Code, derr.Message, 0)
		return false
	}
	return true
}

var acceptedBody = []byte(`{"status":"verification_sent"}` + "\n")
var acceptedEmailBody = []byte(`{"status":"accepted"}` + "\n")

func (s *Server) signup(w http.ResponseWriter, r *http.Request) {
	var req credentialsRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.svc.Signup(r.Context(), s.client(r), req.Email, req.Password); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSONBytes(w, http.StatusAccepted, acceptedBody)
}

func (s *Server) verifyEmail(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.svc.VerifyEmail(r.Context(), s.client(r), req.Token); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSONBytes(w, http.StatusOK, []byte(`{"status":"email_verified"}`+"\n"))
}

func (s *Server) resendVerification(w http.ResponseWriter, r *http.Request) {
	var req emailRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.svc.ResendVerification(r.Context(), s.client(r), req.Email); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSONBytes(w, http.StatusAccepted, acceptedEmailBody)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req credentialsRequest
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.svc.Login(r.Context(), s.client(r), req.Email, req.Password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.Challenge != nil {
		s.writeChallenge(w, res.Challenge)
		return
	}
	s.writeSession(w, res)
}

func (s *Server) setCookie(w http.ResponseWriter, res service.LoginResult) {
	http.SetCookie(w, SessionCookie(s.cfg, res))
}

// writeSession answers with a new session: the cookie and the token.
func (s *Server) writeSession(w http.ResponseWriter, res service.LoginResult) {
	s.setCookie(w, res)
	b := make([]byte, 0, 256)
	b = append(b, `{"token":`...)
	b = appendJSONString(b, res.Token)
	b = append(b, `,"expires_at":`...)
	b = appendTime(b, res.Session.ExpiresAt)
	b = append(b, `,"user":`...)
	b = appendUser(b, res.Session)
	b = append(b, "}\n"...)
	writeJSONBytes(w, http.StatusOK, b)
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, cur session.Info) {
	// 200 bytes of names and times, and the strings: one allocation (a fixed
	// 256 was grown to 512 for every answer).
	b := make([]byte, 0, 224+len(cur.UserID)+len(cur.Email)+len(cur.ID)+len(cur.Level))
	b = append(b, `{"user":`...)
	b = appendUser(b, cur)
	b = append(b, `,"session":{"id":`...)
	b = appendJSONString(b, cur.ID)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, cur.CreatedAt)
	b = append(b, `,"expires_at":`...)
	b = appendTime(b, cur.ExpiresAt)
	b = append(b, `,"auth_level":`...)
	b = appendJSONString(b, cur.Level)
	b = append(b, `,"auth_time":`...)
	b = appendTime(b, cur.AuthAt)
	b = append(b, "}}\n"...)
	writeJSONBytes(w, http.StatusOK, b)
}

// SessionCookie is the cookie that carries a new session (also set by the
// hosted pages).
func SessionCookie(cfg *config.Config, res service.LoginResult) *http.Cookie {
	return &http.Cookie{
		Name: cfg.CookieName, Value: res.Token, Path: "/", Expires: res.Session.ExpiresAt,
		MaxAge: int(time.Until(res.Session.ExpiresAt) / time.Second), HttpOnly: true, Secure: cfg.CookieSecure, SameSite: http.SameSiteLaxMode,
	}
}

// ClearSessionCookie is the cookie that ends the session cookie.
func ClearSessionCookie(cfg *config.Config) *http.Cookie {
	return &http.Cookie{Name: cfg.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: cfg.CookieSecure, SameSite: http.SameSiteLaxMode}
}

func (s *Server) clearCookie(w http.ResponseWriter) { http.SetCookie(w, ClearSessionCookie(s.cfg)) }

func (s *Server) logout(w http.ResponseWriter, r *http.Request, cur session.Info) {
	if err := s.svc.Logout(r.Context(), s.client(r), cur); err != nil {
		s.fail(w, r, err)
		return
	}
	s.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) logoutAll(w http.ResponseWriter, r *http.Request, cur session.Info) {
	if err := s.svc.LogoutAll(r.Context(), s.client(r), cur); err != nil {
		s.fail(w, r, err)
		return
	}
	s.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

type sessionJSON struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, cur session.Info) {
	ss, err := s.svc.ListSessions(r.Context(), cur)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Sessions []sessionJSON `json:"sessions"`
	}{Sessions: make([]sessionJSON, 0, len(ss))}
	for _, x := range ss {
		out.Sessions = append(out.Sessions, sessionJSON{
			ID: x.ID, CreatedAt: x.CreatedAt.UTC().Truncate(time.Second), ExpiresAt: x.ExpiresAt.UTC().Truncate(time.Second),
			LastSeenAt: x.LastSeenAt.UTC().Truncate(time.Second), IP: x.IP, UserAgent: x.UserAgent, Current: x.ID == cur.ID,
		})
	}
	b, _ := json.Marshal(out)
	writeJSONBytes(w, http.StatusOK, append(b, '\n'))
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request, cur session.Info) {
	if err := s.svc.RevokeSession(r.Context(), s.client(r), cur, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) forgotPassword(w http.ResponseWriter, r *http.Request) {
	var req emailRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.svc.ForgotPassword(r.Context(), s.client(r), req.Email); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSONBytes(w, http.StatusAccepted, acceptedEmailBody)
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) {
	var req resetRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.svc.ResetPassword(r.Context(), s.client(r), req.Token, req.Password); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, cur session.Info) {
	var req changeRequest
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.svc.ChangePassword(r.Context(), s.client(r), cur, req.CurrentPassword, req.NewPassword)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeSession(w, res)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 0, 96)
	b = append(b, `{"status":"ok","uptime":`...)
	b = strconv.AppendFloat(b, time.Since(s.started).Seconds(), 'f', 3, 64)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, s.version)
	b = append(b, "}\n"...)
	writeJSONBytes(w, http.StatusOK, b)
}

func (s *Server) readiness(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	var failed []string
	status := "ready"
	if s.draining.Load() {
		failed = append(failed, "shutting down")
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		for _, c := range s.ready(ctx) {
			switch {
			case c.Err == nil:
				checks[c.Name] = "ok"
			case c.Degrades:
				checks[c.Name] = c.Err.Error()
				status = "degraded"
			default:
				checks[c.Name] = c.Err.Error()
				failed = append(failed, c.Name)
			}
		}
		cancel()
	}
	if len(failed) == 0 {
		b, _ := json.Marshal(map[string]any{"status": status, "checks": checks})
		writeJSONBytes(w, http.StatusOK, append(b, '\n'))
		return
	}
	msg := "not ready: "
	for i, f := range failed {
		if i > 0 {
			msg += ", "
		}
		msg += f
	}
	b, _ := json.Marshal(map[string]any{
		"status": "not_ready", "checks": checks,
		"error": map[string]string{"code": "not_ready", "message": msg},
	})
	w.Header().Set("Retry-After", "5")
	writeJSONBytes(w, http.StatusServiceUnavailable, append(b, '\n'))
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}
