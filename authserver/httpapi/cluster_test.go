package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/testservers"
)

// The whole authserver with REDIS_URL in the cluster form, on a real
// 3-primary Redis Cluster: ready, sessions cached in the cluster, logout
// and logout-all immediate, lockout enforced, and never a fallback
// ("redis unavailable", "rate limiter unavailable") in the logs, since
// Redis trouble fails open and would otherwise go unnoticed here.
func TestServerOnRedisCluster(t *testing.T) {
	t.Parallel()
	cl := testservers.RedisCluster(t, 3)
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"REDIS_URL":              cl.URL(),
		"AUTH_LOCKOUT_THRESHOLD": "2", "AUTH_LOCKOUT_BASE": "30s", "AUTH_LOCKOUT_MAX": "60s",
	}})
	ctx := context.Background()
	rdb, err := app.NewRedis(cl.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()

	if r := e.Do(t, "GET", "/ready", nil); r.Status != 200 {
		t.Fatalf("ready on the cluster: %d %s", r.Status, r.Body)
	}
	email, pw := "cluster@example.com", "a cluster passphrase"
	tok1 := e.SignupVerifyLogin(t, email, pw)
	r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw})
	if r.Status != 200 {
		t.Fatalf("second login: %d %s", r.Status, r.Body)
	}
	tok2 := r.JSON["token"].(string)
	for _, tok := range []string{tok1, tok2} {
		h := sha256.Sum256([]byte(tok))
		v, err := rdb.Get(ctx, "authstack:session:"+hex.EncodeToString(h[:])).Result()
		if err != nil || !strings.HasPrefix(v, "2|") {
			t.Fatalf("session not cached in the cluster: %q %v", v, err)
		}
		if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...); r.Status != 200 {
			t.Fatalf("session: %d %s", r.Status, r.Body)
		}
	}
	if r := e.Do(t, "POST", "/auth/logout", nil, authtest.Bearer(tok1)...); r.Status/100 != 2 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok1)...); r.Status != 401 {
		t.Fatalf("session after logout: %d", r.Status)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok2)...); r.Status != 200 {
		t.Fatalf("other session after logout: %d", r.Status)
	}
	if r := e.Do(t, "POST", "/auth/logout-all", nil, authtest.Bearer(tok2)...); r.Status/100 != 2 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok2)...); r.Status != 401 {
		t.Fatalf("session after logout-all: %d", r.Status)
	}

	// Two wrong passwords lock the account: the right one gets 429.
	for i := 0; i < 2; i++ {
		if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": "wrong password!"}); r.Status != 401 {
			t.Fatalf("wrong password %d: %d %s", i, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw}); r.Status != 429 || r.ErrorCode() != "rate_limited" {
		t.Fatalf("locked login on the cluster: %d %s", r.Status, r.Body)
	}

	for _, bad := range []string{"redis unavailable", "rate limiter unavailable", "CROSSSLOT"} {
		if strings.Contains(e.Logs(), bad) {
			t.Fatalf("the server fell back (%q) on the cluster; logs:\n%s", bad, e.Logs())
		}
	}
}
