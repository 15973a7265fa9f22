package httpapi_test

import (
	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/internal/authtest"
)

func newRedis(e *authtest.Env) (redis.UniversalClient, error) { return app.NewRedis(e.Redis.URL()) }

// databaseEnv is the environment of an authserver command run against e's
// database (DATABASE_URL, direct), and nothing else.
func databaseEnv(e *authtest.Env) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if k == "DATABASE_URL" {
			return e.DirectURL, true
		}
		return "", false
	}
}
