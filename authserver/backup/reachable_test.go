package backup

import (
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/internal/testservers"
)

// TestBackupAndRestoreWaitForTheDatabase: a backup Job's pod (or a restore
// pod) may start before the network lets it reach the database; the backup
// and the restore wait for the port instead of failing on the first refused
// connection (on the real node, kube-router refused the Job's first pg_dump).
func TestBackupAndRestoreWaitForTheDatabase(t *testing.T) {
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	seed(t, src, 3)
	s3, key := newStorage(t)
	e := s3Env(s3, "backups", "p", key)
	late := strings.Replace(src, pg.Addr(), testservers.LateProxy(t, pg.Addr(), 2*time.Second), 1)
	if r := runCLI(t, e.with("DATABASE_URL", late), "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup through a port that opens after 2 s: exit %d\n%s", r.code, r.stderr)
	}
	dst := pg.NewDatabase(t)
	lateDst := strings.Replace(dst, pg.Addr(), testservers.LateProxy(t, pg.Addr(), 2*time.Second), 1)
	if r := runCLI(t, e, "restore", "postgres", "--target-url", lateDst); r.code != 0 {
		t.Fatalf("restore into a port that opens after 2 s: exit %d\n%s", r.code, r.stderr)
	}
	if got, want := len(tableRows(t, dst)["users"]), 3; got != want {
		t.Fatalf("restored %d users, want %d", got, want)
	}
}
