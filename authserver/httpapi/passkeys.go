package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// Passkey (WebAuthn) endpoints: the options go out in the JSON form
// navigator.credentials accepts after base64url decoding (or through
// PublicKeyCredential.parse*OptionsFromJSON), the credential comes back as
// credential.toJSON(). The contract is in openapi.yaml.

type passkeyJSON struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at"`
	Transports     []string   `json:"transports"`
	BackupEligible bool       `json:"backup_eligible"`
	BackedUp       bool       `json:"backed_up"`
	CloneWarning   bool       `json:"clone_warning"`
}

func toPasskeyJSON(p store.Passkey) passkeyJSON {
	out := passkeyJSON{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt.UTC().Truncate(time.Second), Transports: p.Transports,
		BackupEligible: p.BackupEligible, BackedUp: p.BackupState, CloneWarning: p.CloneWarning}
	if p.LastUsedAt != nil {
		t := p.LastUsedAt.UTC().Truncate(time.Second)
		out.LastUsedAt = &t
	}
	if out.Transports == nil {
		out.Transports = []string{}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeJSONBytes(w, status, append(b, '\n'))
}

func (s *Server) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request, cur session.Info) {
	var req passkeyBeginRequest
	if !s.decode(w, r, &req) {
		return
	}
	opts, err := s.svc.BeginPasskeyRegistration(r.Context(), cur)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, opts)
}

func (s *Server) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request, cur session.Info) {
	var req passkeyFinishRequest
	if !s.decode(w, r, &req) {
		return
	}
	p, codes, err := s.svc.FinishPasskeyRegistration(r.Context(), s.client(r), cur, req.Name, req.Credential)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"passkey": toPasskeyJSON(p), "recovery_codes": nonNil(codes)})
}

func (s *Server) listPasskeys(w http.ResponseWriter, r *http.Request, cur session.Info) {
	ps, err := s.svc.ListPasskeys(r.Context(), cur)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]passkeyJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, toPasskeyJSON(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"passkeys": out})
}

func (s *Server) renamePasskey(w http.ResponseWriter, r *http.Request, cur session.Info) {
	var req nameRequest
	if !s.decode(w, r, &req) {
		return
	}
	p, err := s.svc.RenamePasskey(r.Context(), s.client(r), cur, r.PathValue("id"), req.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"passkey": toPasskeyJSON(p)})
}

func (s *Server) removePasskey(w http.ResponseWriter, r *http.Request, cur session.Info) {
	if err := s.svc.RemovePasskey(r.Context(), s.client(r), cur, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) passkeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	var req passkeyBeginRequest
	if !s.decode(w, r, &req) {
		return
	}
	opts, err := s.svc.BeginPasskeyLogin(r.Context(), s.client(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, opts)
}

func (s *Server) passkeyLoginFinish(w http.ResponseWriter, r *http.Request) {
	var req passkeyFinishRequest
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.svc.FinishPasskeyLogin(r.Context(), s.client(r), req.Credential)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeSession(w, res)
}

// passkeyChallengeBegin answers the options of a ceremony that a login
// challenge of the password step starts (second factor or enrolment).
func (s *Server) passkeyChallengeBegin(begin func(ctx context.Context, challenge string) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req passkeyBeginRequest
		if !s.decode(w, r, &req) {
			return
		}
		if req.Challenge == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", `field "challenge" is required`, 0)
			return
		}
		opts, err := begin(r.Context(), req.Challenge)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, opts)
	}
}

func (s *Server) passkeySecondFactorFinish(w http.ResponseWriter, r *http.Request) {
	var req passkeyFinishRequest
	if !s.decode(w, r, &req) {
		return
	}
	res, err := s.svc.FinishPasskeySecondFactor(r.Context(), s.client(r), req.Challenge, req.Credential)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeSession(w, res)
}

func (s *Server) passkeyEnrollFinish(w http.ResponseWriter, r *http.Request) {
	var req passkeyFinishRequest
	if !s.decode(w, r, &req) {
		return
	}
	codes, res, err := s.svc.FinishPasskeyEnrollment(r.Context(), s.client(r), req.Challenge, req.Name, req.Credential)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeSessionWithCodes(w, res, codes)
}

func (s *Server) passkeyReauthBegin(w http.ResponseWriter, r *http.Request, cur session.Info) {
	var req passkeyBeginRequest
	if !s.decode(w, r, &req) {
		return
	}
	opts, err := s.svc.BeginPasskeyReauthentication(r.Context(), cur)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, opts)
}

func (s *Server) passkeyReauthFinish(w http.ResponseWriter, r *http.Request, cur session.Info) {
	var req passkeyFinishRequest
	if !s.decode(w, r, &req) {
		return
	}
	info, err := s.svc.FinishPasskeyReauthentication(r.Context(), s.client(r), cur, req.Credential)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"auth_level": info.Level, "auth_time": info.AuthAt})
}
