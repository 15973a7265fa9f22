package config

import (
	"os"
	"strings"
	"testing"
)

func backupEnv() map[string]string {
	return map[string]string{
		"DATABASE_URL": "postgres://backup:dbpw@db:5432/auth", "S3_BUCKET": "backups", "S3_PREFIX": "/stacks/prod/",
		"S3_ENDPOINT": "http://s3.local:7070", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3-secret",
		"BACKUP_PUBLIC_KEY_FILE": "/keys/public.asc", "BACKUP_SIGNING_KEY_FILE": "/keys/signing.pem",
	}
}

func getter(env map[string]string) Getenv {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func reader(files map[string]string) ReadFile {
	return func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
	}
}

func TestLoadBackup(t *testing.T) {
	c, err := LoadBackup(getter(backupEnv()), reader(nil), BackupPostgres)
	if err != nil {
		t.Fatal(err)
	}
	want := S3{Endpoint: "s3.local:7070", Secure: false, Bucket: "backups", Prefix: "stacks/prod", AccessKey: "AKID", SecretKey: "s3-secret"}
	if c.S3 != want || c.RetentionDays != 30 || c.PgDump != "pg_dump" || c.PgRestore != "pg_restore" || c.DatabaseURL == "" {
		t.Fatalf("got %+v", c)
	}
}

// TestBackupSecretsFromFiles: every secret of a backup run has a _FILE variant.
func TestBackupSecretsFromFiles(t *testing.T) {
	env := backupEnv()
	files := map[string]string{}
	for _, name := range []string{"DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		files["/run/secrets/"+name] = env[name] + "\n"
		env[name+"_FILE"] = "/run/secrets/" + name
		delete(env, name)
	}
	c, err := LoadBackup(getter(env), reader(files), BackupPostgres)
	if err != nil {
		t.Fatal(err)
	}
	if c.S3.AccessKey != "AKID" || c.S3.SecretKey != "s3-secret" || c.DatabaseURL != "postgres://backup:dbpw@db:5432/auth" {
		t.Fatalf("got %+v", c)
	}

	env = backupEnv()
	delete(env, "DATABASE_URL")
	env["REDIS_URL_FILE"] = "/run/secrets/redis"
	c, err = LoadBackup(getter(env), reader(map[string]string{"/run/secrets/redis": "redis://:pw@redis:6379"}), BackupRedis)
	if err != nil || c.RedisURL != "redis://:pw@redis:6379" {
		t.Fatalf("REDIS_URL_FILE: %+v, %v", c, err)
	}
}

func TestBackupErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		name string
		set  map[string]string
		kind string
		want []string
	}{
		{"nothing set", nil, BackupPostgres, []string{"DATABASE_URL: required", "S3_BUCKET: required", "BACKUP_PUBLIC_KEY_FILE: required", "BACKUP_SIGNING_KEY_FILE: required"}},
		{"redis needs its URL", nil, BackupRedis, []string{"REDIS_URL: required"}},
		{"half the S3 credentials", map[string]string{"AWS_SECRET_ACCESS_KEY": ""}, BackupPostgres, []string{"AWS_ACCESS_KEY_ID: set both"}},
		{"endpoint with a path", map[string]string{"S3_ENDPOINT": "https://s3.local/bucket"}, BackupPostgres, []string{"S3_ENDPOINT: must be"}},
		{"retention", map[string]string{"BACKUP_RETENTION_DAYS": "0"}, BackupPostgres, []string{"BACKUP_RETENTION_DAYS: must be an integer from 1 to 36500"}},
		{"path style", map[string]string{"S3_FORCE_PATH_STYLE": "yes please"}, BackupPostgres, []string{"S3_FORCE_PATH_STYLE: must be true or false"}},
		{"database URL", map[string]string{"DATABASE_URL": "mysql://u:dbpw@db/auth"}, BackupPostgres, []string{"DATABASE_URL: must be a postgres://"}},
		{"unknown kind", nil, "etcd", []string{`kind: unknown backup kind "etcd"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := backupEnv()
			if tc.set == nil {
				env = map[string]string{}
			}
			for k, v := range tc.set {
				env[k] = v
			}
			_, err := LoadBackup(getter(env), reader(nil), tc.kind)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "dbpw") || strings.Contains(err.Error(), "s3-secret") {
				t.Errorf("a secret is in the error: %q", err)
			}
		})
	}
}

func TestLoadRestore(t *testing.T) {
	env := map[string]string{"S3_BUCKET": "b", "BACKUP_PRIVATE_KEY_FILE": "/keys/private.asc", "BACKUP_VERIFY_KEY_FILE": "/keys/verify.pem"}
	c, err := LoadRestore(getter(env), reader(nil))
	if err != nil || c.DatabaseURL != "" || c.PrivateKeyFile != "/keys/private.asc" || c.VerifyKeyFile != "/keys/verify.pem" ||
		!c.TrustUnsignedBefore.IsZero() || c.MaxExpansion != DefaultMaxExpansion {
		t.Fatalf("restore without DATABASE_URL (--target-url names it): %+v, %v", c, err)
	}
	env["BACKUP_TRUST_UNSIGNED_BEFORE"], env["BACKUP_MAX_EXPANSION"] = "2026-11-30T00:00:00Z", "1000"
	if c, err := LoadRestore(getter(env), reader(nil)); err != nil || c.TrustUnsignedBefore.Format("2006-01-02") != "2026-11-30" || c.MaxExpansion != 1000 {
		t.Fatalf("the opt-ins: %+v, %v", c, err)
	}
	env["BACKUP_TRUST_UNSIGNED_BEFORE"], env["BACKUP_MAX_EXPANSION"] = "yesterday", "1"
	if _, err := LoadRestore(getter(env), reader(nil)); err == nil || !strings.Contains(err.Error(), "BACKUP_TRUST_UNSIGNED_BEFORE: must be an RFC 3339 time") ||
		!strings.Contains(err.Error(), "BACKUP_MAX_EXPANSION: must be an integer") {
		t.Fatalf("bad opt-ins: %v", err)
	}
	delete(env, "BACKUP_VERIFY_KEY_FILE")
	if _, err := LoadRestore(getter(env), reader(nil)); err == nil || !strings.Contains(err.Error(), "BACKUP_VERIFY_KEY_FILE: required") {
		t.Fatalf("restore without a verify key: %v", err)
	}
	if _, err := LoadRestore(getter(map[string]string{"S3_BUCKET": "b"}), reader(nil)); err == nil || !strings.Contains(err.Error(), "BACKUP_PRIVATE_KEY_FILE: required") {
		t.Fatalf("restore without a private key: %v", err)
	}
}
