package httpapi_test

import (
	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/internal/authtest"
)

func newRedis(e *authtest.Env) (redis.UniversalClient, error) { return app.NewRedis(e.Redis.URL()) }
