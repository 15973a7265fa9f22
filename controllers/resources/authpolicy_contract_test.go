package resources

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/leanauth/authstack/authserver/edge"
)

// What the AuthPolicy objects tell proxies to copy is everything the check
// sets: a proxy replaces only the client's headers it copies, so a header left
// out could be forged by the client (TestRealNodeEdgeProxies, through real
// proxies, with the rendered Middleware and annotations).
func TestAuthResponseHeadersAreTheChecks(t *testing.T) {
	check := []string{edge.UserIDHeader, edge.EmailHeader, edge.SessionIDHeader, edge.LevelHeader, edge.TimeHeader}
	if !slices.Equal(AuthResponseHeaders, check) {
		t.Errorf("AuthResponseHeaders = %v, the check sets %v", AuthResponseHeaders, check)
	}
	re := regexp.MustCompile(authHeadersRegex)
	for _, h := range append(check, edge.HeaderPrefix+"Anything") {
		if !re.MatchString(h) || !strings.HasPrefix(h, edge.HeaderPrefix) {
			t.Errorf("Traefik's regex %q misses %s", authHeadersRegex, h)
		}
	}
	for _, h := range []string{"X_auth_user_id", "X-Auth_user-Id", "x-auth-user-id"} { // a red-team review's smuggling variants
		if !re.MatchString(h) {
			t.Errorf("Traefik's regex %q lets the client's %s through", authHeadersRegex, h)
		}
	}
	if re.MatchString("X-Authorization") || re.MatchString("Authorization") {
		t.Errorf("Traefik's regex %q takes headers the check does not own", authHeadersRegex)
	}
}
