package resources

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The connection Secret holds the URLs the operator composes for the authserver (they
// contain passwords, so they live in a Secret and the pods reference them; nothing is
// inlined): the pooled database URL, the managed database's direct URL, the managed
// Redis URL.
const (
	ConnectionDatabaseURLKey       = "database-url"
	ConnectionDatabaseDirectURLKey = "database-direct-url"
	ConnectionRedisURLKey          = "redis-url"
)

// Connection is what goes into the connection Secret; empty values are left out.
type Connection struct {
	DatabaseURL       string
	DatabaseDirectURL string
	RedisURL          string
}

// ConnectionSecretName names the connection Secret.
func ConnectionSecretName(stack *authv1alpha1.AuthStack) string { return stack.Name + "-connection" }

// ConnectionFor composes the authserver's URLs. db is the database (external, parsed
// from its Secret, or managed); redisPassword is the managed Redis password.
func ConnectionFor(stack *authv1alpha1.AuthStack, db DatabaseURL, redisPassword string) Connection {
	var c Connection
	direct := ""
	cnpg := CloudNativePG(stack)
	if ManagedDatabase(stack) || cnpg != nil {
		direct = db.URLWith(db.Host, db.Port, db.SSLMode)
	}
	switch {
	case PoolerEnabled(stack):
		c.DatabaseURL = PooledDatabaseURL(stack, db)
		c.DatabaseDirectURL = direct
	case cnpg != nil && cnpg.Pooler != "":
		// CloudNativePG's Pooler serves the application; migrations go to -rw.
		c.DatabaseURL = db.URLWith(cnpg.Pooler, CNPGPoolerPort, db.SSLMode)
	default:
		c.DatabaseURL = direct
	}
	if cnpg != nil {
		c.DatabaseDirectURL = direct // migrations behind a pooler, and the backup Jobs (backup.go)
	}
	if ManagedRedis(stack) {
		c.RedisURL = RedisClientURL(stack, redisPassword)
	}
	return c
}

// NeedsConnectionSecret says whether the authserver reads anything from the connection Secret.
func NeedsConnectionSecret(stack *authv1alpha1.AuthStack) bool {
	return PoolerEnabled(stack) || ManagedDatabase(stack) || CloudNativePG(stack) != nil || ManagedRedis(stack)
}

// ConnectionSecret renders the owned connection Secret, or nil when nothing needs it.
func ConnectionSecret(stack *authv1alpha1.AuthStack, c Connection) *corev1.Secret {
	if !NeedsConnectionSecret(stack) {
		return nil
	}
	data := map[string][]byte{}
	for k, v := range map[string]string{
		ConnectionDatabaseURLKey:       c.DatabaseURL,
		ConnectionDatabaseDirectURLKey: c.DatabaseDirectURL,
		ConnectionRedisURLKey:          c.RedisURL,
	} {
		if v != "" {
			data[k] = []byte(v)
		}
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(stack, ConnectionSecretName(stack), ComponentAuthServer),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// dataTierEnv is the database and Redis environment of the authserver containers:
// DATABASE_URL (the pooler when on), DATABASE_DIRECT_URL (the database itself, for
// migrations, when the pooler is on) and REDIS_URL, each from a Secret by reference.
func dataTierEnv(stack *authv1alpha1.AuthStack, withRedis bool) []corev1.EnvVar {
	conn := func(key string) authv1alpha1.SecretKeyRef {
		return authv1alpha1.SecretKeyRef{Name: ConnectionSecretName(stack), Key: key}
	}
	var env []corev1.EnvVar
	ext := stack.Spec.Database.URLSecretRef
	switch {
	case PoolerEnabled(stack):
		env = append(env, secretEnv("DATABASE_URL", conn(ConnectionDatabaseURLKey)))
		if ext != nil {
			env = append(env, secretEnv("DATABASE_DIRECT_URL", *ext))
		} else {
			env = append(env, secretEnv("DATABASE_DIRECT_URL", conn(ConnectionDatabaseDirectURLKey)))
		}
	case ext != nil:
		env = append(env, secretEnv("DATABASE_URL", *ext))
	case CloudNativePG(stack) != nil && CloudNativePG(stack).Pooler != "":
		env = append(env, secretEnv("DATABASE_URL", conn(ConnectionDatabaseURLKey)),
			secretEnv("DATABASE_DIRECT_URL", conn(ConnectionDatabaseDirectURLKey)))
	default:
		env = append(env, secretEnv("DATABASE_URL", conn(ConnectionDatabaseURLKey)))
	}
	if withRedis {
		if r := stack.Spec.Redis.URLSecretRef; r != nil {
			env = append(env, secretEnv("REDIS_URL", *r))
		} else {
			env = append(env, secretEnv("REDIS_URL", conn(ConnectionRedisURLKey)))
		}
	}
	return env
}
