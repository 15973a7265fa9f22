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
	// Every X-Auth-Require-Level header and "level" query parameter (the
	// query is parsed only when there is one: most checks have none).
	levels := r.Header.Values("X-Auth-Require-Level")
	if r.URL.RawQuery != "" {
		levels = append(r.URL.Query()["level"], levels...)
	}
	d := s.edge.Decide(r.Context(), edge.Request{
		Authorization: r.Header.Get("Authorization"),
		Cookies:       r.Header["Cookie"],
		Accept:        r.Header.Get("Accept"),
		URL:           func() string { return originalURL(r) },
		NoRedirect:    edge.FromNginx(r.Header.Get),
		Levels:        levels,
	})
	switch d.Outcome {
	case edge.Allow:
		// One backing array for the five values (the hot path: one
		// allocation, not five).
		v := []string{d.Session.UserID, d.Session.Email, d.Session.ID, d.Session.Level,
			string(appendAuthUnix(make([]byte, 0, 12), d.Session))}
		h := w.Header()
		h[edge.UserIDHeader] = v[0:1:1]
		h[edge.EmailHeader] = v[1:2:2]
		h[edge.SessionIDHeader] = v[2:3:3]
		h[edge.LevelHeader] = v[3:4:4]
		h[edge.TimeHeader] = v[4:5:5]
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

// originalURL is the URL the client asked for: from Traefik's
// X-Forwarded-Proto, -Host and -Uri, or, for Envoy's HTTP ext_authz
// (/auth/check + the client's path), from the path after the check's and
// the Host.
func originalURL(r *http.Request) string {
	original := edge.OriginalURL(r.Header.Get)
	if rest := r.PathValue("path"); original == "" && rest != "" {
		if proto := r.Header.Get("X-Forwarded-Proto"); proto != "" {
			original = proto + "://" + r.Host + "/" + rest
			if r.URL.RawQuery != "" {
				original += "?" + r.URL.RawQuery
			}
		}
	}
	return original
}
