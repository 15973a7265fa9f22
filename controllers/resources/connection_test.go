package resources

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// envRefs renders the authserver's containers and returns, per container, env name ->
// "secret/key" of its Secret reference.
func envRefs(t *testing.T, s *authv1alpha1.AuthStack) map[string]map[string]string {
	t.Helper()
	d := AuthServerDeployment(s, sampleInputs(s))
	out := map[string]map[string]string{}
	for _, c := range append(append(d.Spec.Template.Spec.InitContainers[:0:0], d.Spec.Template.Spec.InitContainers...), d.Spec.Template.Spec.Containers...) {
		m := map[string]string{}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "DATABASE") || e.Name == "REDIS_URL" {
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("%s: %s is not a Secret reference", c.Name, e.Name)
					continue
				}
				m[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
			}
		}
		out[c.Name] = m
	}
	return out
}

func TestAuthServerDataTierEnv(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*authv1alpha1.AuthStack)
		server map[string]string
	}{
		{"pooler on, external database and Redis", func(s *authv1alpha1.AuthStack) { s.Spec.Pooler.Enabled = ptr.To(true) },
			map[string]string{"DATABASE_URL": "demo-connection/database-url", "DATABASE_DIRECT_URL": "demo-db/url", "REDIS_URL": "demo-redis/url"}},
		{"pooler off, external", func(s *authv1alpha1.AuthStack) {},
			map[string]string{"DATABASE_URL": "demo-db/url", "REDIS_URL": "demo-redis/url"}},
		{"pooler on, managed database and Redis", func(s *authv1alpha1.AuthStack) {
			s.Spec.Pooler.Enabled = ptr.To(true)
			s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
			s.Spec.Redis = authv1alpha1.RedisSpec{}
		}, map[string]string{"DATABASE_URL": "demo-connection/database-url", "DATABASE_DIRECT_URL": "demo-connection/database-direct-url",
			"REDIS_URL": "demo-connection/redis-url"}},
		{"pooler off, managed database", func(s *authv1alpha1.AuthStack) {
			s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
		}, map[string]string{"DATABASE_URL": "demo-connection/database-url", "REDIS_URL": "demo-redis/url"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleStack()
			tc.mutate(s)
			refs := envRefs(t, s)
			if got := refs[ComponentAuthServer]; !equalMaps(got, tc.server) {
				t.Errorf("authserver env %v, want %v", got, tc.server)
			}
			wantMigrate := map[string]string{}
			for k, v := range tc.server {
				if k != "REDIS_URL" {
					wantMigrate[k] = v
				}
			}
			if got := refs["migrate"]; !equalMaps(got, wantMigrate) {
				t.Errorf("migrate env %v, want %v", got, wantMigrate)
			}
			// Whatever the pods read from the connection Secret is composed from Secrets
			// in ReferencedSecrets, so the pod hash covers it.
			uses := map[string]bool{}
			for _, u := range ReferencedSecrets(s) {
				uses[u.Ref.Name] = true
			}
			if NeedsConnectionSecret(s) && ManagedRedis(s) && !uses[RedisPasswordSecretName(s)] {
				t.Error("the Redis password is not in ReferencedSecrets")
			}
			if ManagedDatabase(s) && !uses[PostgresPasswordSecretName(s)] {
				t.Error("the PostgreSQL password is not in ReferencedSecrets")
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestConnectionSecret(t *testing.T) {
	s := sampleStack()
	s.Spec.Pooler.Enabled = ptr.To(true)
	s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
	s.Spec.Redis = authv1alpha1.RedisSpec{}
	db := ManagedDatabaseURL(s, "pg-SECRET")
	c := ConnectionFor(s, db, "redis-SECRET")
	sec := ConnectionSecret(s, c)
	want := map[string]string{
		"database-url":        "postgres://authstack:pg-SECRET@demo-pgbouncer.team-a.svc:6432/authstack?sslmode=disable",
		"database-direct-url": "postgres://authstack:pg-SECRET@demo-postgres.team-a.svc:5432/authstack?sslmode=disable",
		"redis-url":           "redis://:redis-SECRET@demo-redis.team-a.svc:6379/0",
	}
	if len(sec.Data) != len(want) {
		t.Errorf("keys %v", sortedKeys(sec.Data))
	}
	for k, v := range want {
		if string(sec.Data[k]) != v {
			t.Errorf("%s = %q, want %q", k, sec.Data[k], v)
		}
	}
	if len(sec.OwnerReferences) != 1 {
		t.Error("the connection Secret is not owned by the stack")
	}
	// External everything, pooler off: no connection Secret at all.
	s = sampleStack()
	if NeedsConnectionSecret(s) || ConnectionSecret(s, Connection{}) != nil {
		t.Error("a connection Secret for a stack that reads none")
	}
	// External database behind the pooler: its sslmode is the pooler's, the client hop is plain.
	s.Spec.Pooler.Enabled = nil // the default: on
	ext, _ := ParseDatabaseURL("postgres://auth:pw@db.example.com:5432/auth?sslmode=verify-full")
	c = ConnectionFor(s, ext, "")
	if c.DatabaseURL != "postgres://auth:pw@demo-pgbouncer.team-a.svc:6432/auth?sslmode=disable" || c.DatabaseDirectURL != "" || c.RedisURL != "" {
		t.Errorf("connection %+v", c)
	}
}
