package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leanauth/authstack/internal/testservers"
)

// TestSecretsFromFiles: the backup reads its secrets from NAME_FILE like the
// server does (authserver/config), so a Secret mounted as files works.
func TestSecretsFromFiles(t *testing.T) {
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	seed(t, src, 3)
	s3, key := newStorage(t)

	dir := t.TempDir()
	file := func(name, value string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	e := s3Env(s3, "backups", "files", key)
	delete(e, "AWS_SECRET_ACCESS_KEY")
	e = e.with("AWS_SECRET_ACCESS_KEY_FILE", file("s3-secret", s3.SecretKey()),
		"DATABASE_URL_FILE", file("database-url", src))

	if r := runCLI(t, e, "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup with secrets in files: exit %d, %v", r.code, r.log["error"])
	}
	if objs := objects(t, s3.Client(t), "backups"); len(objs) != 2 || !strings.HasPrefix(objs[0].Key, "files/postgres/") || objs[1].Key != objs[0].Key+sigSuffix {
		t.Fatalf("objects after the backup: %v", keysOf(objs))
	}

	r := runCLI(t, e.with("AWS_SECRET_ACCESS_KEY", s3.SecretKey()), "backup", "postgres")
	if msg, _ := r.log["error"].(string); r.code != 2 || !strings.Contains(msg, "set both AWS_SECRET_ACCESS_KEY and AWS_SECRET_ACCESS_KEY_FILE") {
		t.Fatalf("both the variable and its _FILE set: exit %d, %q", r.code, msg)
	}
	if strings.Contains(r.stderr, s3.SecretKey()) {
		t.Fatal("the secret is in the log")
	}
}
