package backup

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/internal/testservers"
)

// lateProxy returns an address that refuses connections for delay (nothing
// listens), then forwards them to target: a database the network lets a new
// pod reach only a moment after it starts, as a NetworkPolicy engine does.
func lateProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		select {
		case <-done:
			return
		case <-time.After(delay):
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return // the test then fails on the refused connection
		}
		go func() { <-done; l.Close() }()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
	return addr
}

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
	late := strings.Replace(src, pg.Addr(), lateProxy(t, pg.Addr(), 2*time.Second), 1)
	if r := runCLI(t, e.with("DATABASE_URL", late), "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup through a port that opens after 2 s: exit %d\n%s", r.code, r.stderr)
	}
	dst := pg.NewDatabase(t)
	lateDst := strings.Replace(dst, pg.Addr(), lateProxy(t, pg.Addr(), 2*time.Second), 1)
	if r := runCLI(t, e, "restore", "postgres", "--target-url", lateDst); r.code != 0 {
		t.Fatalf("restore into a port that opens after 2 s: exit %d\n%s", r.code, r.stderr)
	}
	if got, want := len(tableRows(t, dst)["users"]), 3; got != want {
		t.Fatalf("restored %d users, want %d", got, want)
	}
}
