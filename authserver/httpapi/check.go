package httpapi

import (
	"net/http"

	"github.com/leanauth/authstack/authserver/edge"
)

// checkPrefixPattern is the check as Envoy's HTTP ext_authz calls it: the
// check's path followed by the client's, with the client's method.
const checkPrefixPattern = "/auth/check/{path...}"

// check is the forward-auth endpoint (Traefik ForwardAuth, nginx
// auth_request): 200 with the session's headers for the proxy to copy to
// the app, 302 to the sign-in page for a browser without a session (not for
// nginx, edge.FromNginx), 403 for a session below the required level
// (every level asked for, edge.Request.Levels), else 401 (503 when the session store cannot answer).
func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	original := edge.OriginalURL(r.Header.Get)
	if rest := r.PathValue("path"); original == "" && rest != "" {
		// Envoy's HTTP ext_authz: /auth/check + the client's path, its Host.
		if proto := r.Header.Get("X-Forwarded-Proto"); proto != "" {
			original = proto + "://" + r.Host + "/" + rest
			if r.URL.RawQuery != "" {
				original += "?" + r.URL.RawQuery
			}
		}
	}
	d := s.edge.Decide(r.Context(), edge.Request{
		Authorization: r.Header.Get("Authorization"),
		Cookies:       r.Header["Cookie"],
		Accept:        r.Header.Get("Accept"),
		URL:           original,
		NoRedirect:    edge.FromNginx(r.Header.Get),
		// Every "level" query parameter and X-Auth-Require-Level header.
		Levels: append(r.URL.Query()["level"], r.Header.Values("X-Auth-Require-Level")...),
	})
	switch d.Outcome {
	case edge.Allow:
		h := w.Header()
		h[edge.UserIDHeader] = []string{d.Session.UserID}
		h[edge.EmailHeader] = []string{d.Session.Email}
		h[edge.SessionIDHeader] = []string{d.Session.ID}
		h[edge.LevelHeader] = []string{d.Session.Level}
		h[edge.TimeHeader] = []string{string(appendAuthUnix(make([]byte, 0, 12), d.Session))}
		w.WriteHeader(http.StatusOK)
	case edge.SignIn:
		w.Header()["Location"] = []string{d.Location}
		w.WriteHeader(http.StatusFound)
	default:
		if d.Session.Level != "" { // below the required level: say which it has
			w.Header()[edge.LevelHeader] = []string{d.Session.Level}
		}
		s.fail(w, r, d.Err)
	}
}
