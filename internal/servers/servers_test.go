package servers

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMissingBinaryNamesTheScript(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findBinary("redis-server-does-not-exist", t.TempDir())
	var mb *MissingBinaryError
	if !errors.As(err, &mb) || !strings.Contains(err.Error(), "hack/test-deps.sh") {
		t.Fatalf("want a MissingBinaryError naming hack/test-deps.sh, got %v", err)
	}
	t.Setenv("AUTHSTACK_CACHE", t.TempDir())
	t.Setenv("MAILPIT_BIN", "")
	if _, err := MailpitBinary(); err == nil || !strings.Contains(err.Error(), DepsScript) {
		t.Fatalf("mailpit lookup with an empty cache and PATH: %v", err)
	}
}

func TestRewriteIni(t *testing.T) {
	in := "[databases]\nauthstack = host=db.svc port=5432 dbname=authstack\n\n[pgbouncer]\nlisten_addr = 0.0.0.0\nlisten_port=6432\npool_mode = transaction\nauth_file = /etc/pgbouncer/userlist.txt\nuser = postgres\n"
	out := rewriteIni(in, "listen_addr = 127.0.0.1\nlisten_port = 1234\n")
	for _, want := range []string{"pool_mode = transaction", "listen_addr = 127.0.0.1", "listen_port = 1234", "authstack = host=db.svc"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	for _, gone := range []string{"\nlisten_addr = 0.0.0.0", "\nlisten_port=6432", "\nauth_file = /etc", "\nuser = postgres"} {
		if strings.Contains(out, gone) {
			t.Errorf("%q kept in\n%s", gone, out)
		}
	}
	if got := firstDatabase(in); got != "authstack" {
		t.Errorf("firstDatabase = %q", got)
	}
	if u, p := firstAuthUser("\"authstack\" \"pw\"\"x\"\n"); u != "authstack" || p != `pw"x` {
		t.Errorf("firstAuthUser = %q %q", u, p)
	}
	if out := rewriteIni("[databases]\n* = host=x\n", "listen_port = 1\n"); !strings.Contains(out, "[pgbouncer]\nlisten_port = 1") {
		t.Errorf("no [pgbouncer] section added:\n%s", out)
	}
}

func TestConfPassword(t *testing.T) {
	cases := map[string]string{
		"requirepass abc\n":                     "abc",
		"# requirepass no\nrequirepass \"q\"\n": "q",
		"user default on >pw1 ~* +@all\n":       "pw1",
		"save \"\"\n":                           "",
		"requirepass a\nrequirepass b\n":        "b",
	}
	inc := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(inc, []byte("requirepass from-include\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases["requirepass a\ninclude "+inc+"\n"] = "from-include"
	cases["include "+inc+"\nrequirepass later\n"] = "later"
	for conf, want := range cases {
		if got := confPassword(conf); got != want {
			t.Errorf("confPassword(%q) = %q, want %q", conf, got, want)
		}
	}
}

func TestSweepRemovesDirsOfDeadProcesses(t *testing.T) {
	// A pid that is certainly dead: a child that has exited.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.ProcessState.Pid()
	stale, err := os.MkdirTemp("", "authstack-x-"+itoa(dead)+"-")
	if err != nil {
		t.Fatal(err)
	}
	live, err := os.MkdirTemp("", "authstack-x-"+itoa(os.Getppid())+"-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(live)
	sweepStaleDirs()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		os.RemoveAll(stale)
		t.Fatalf("stale dir %s kept", filepath.Base(stale))
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("dir of a live process removed: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
