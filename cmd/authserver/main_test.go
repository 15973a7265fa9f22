package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leanauth/authstack/internal/testservers"
)

// The test binary doubles as the authserver binary: with AUTHSERVER_MAIN=1
// it runs main, so these tests run real processes with real signals.
func TestMain(m *testing.M) {
	if os.Getenv("AUTHSERVER_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func command(env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"AUTHSERVER_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	cmd := command(env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	if code, out, _ := run(t, nil, "version"); code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, errOut := run(t, nil, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
	// The help lists every subcommand the binary dispatches.
	code, out, _ := run(t, nil, "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, sub := range []string{"serve", "migrate", "healthcheck", "version", "peppers", "backup postgres|redis", "restore postgres|redis"} {
		if !strings.Contains(out, "\n  "+sub) {
			t.Errorf("help does not list %q:\n%s", sub, out)
		}
	}
}

func TestServeRefusesBadConfigNamingTheVariable(t *testing.T) {
	t.Parallel()
	code, _, errOut := run(t, map[string]string{"DATABASE_URL": "postgres://u:hunter2secret@h/db", "AUTH_PEPPER": "hunter3secret"}, "serve")
	if code != 1 || !strings.Contains(errOut, "AUTH_PEPPER") || !strings.Contains(errOut, "REDIS_URL") {
		t.Fatalf("bad config: %d %s", code, errOut)
	}
	if strings.Contains(errOut, "hunter2secret") || strings.Contains(errOut, "hunter3secret") {
		t.Fatalf("secret echoed: %s", errOut)
	}
}

// migrate, then serve as a process: healthcheck passes, the API works,
// SIGTERM drains and exits 0. Nothing is written to disk (the working
// directory is read-only).
func TestMigrateServeHealthcheckSigterm(t *testing.T) {
	t.Parallel()
	direct := testservers.Postgres(t).NewDatabase(t)
	pooled := testservers.PgBouncer(t, direct).URL()
	r := testservers.Redis(t)
	m := testservers.Mailpit(t)

	if code, _, errOut := run(t, map[string]string{"DATABASE_URL": pooled, "DATABASE_DIRECT_URL": direct}, "migrate"); code != 0 {
		t.Fatalf("migrate: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, map[string]string{"DATABASE_URL": direct}, "migrate"); code != 0 || !strings.Contains(errOut, `"applied":[]`) {
		t.Fatalf("second migrate: %d %s", code, errOut)
	}

	port := testservers.FreePort(t)
	env := map[string]string{
		"DATABASE_URL": pooled, "DATABASE_DIRECT_URL": direct, "REDIS_URL": r.URL(), "AUTH_PEPPER": strings.Repeat("5a", 32),
		"SMTP_HOST": m.SMTPHost(), "SMTP_PORT": strconv.Itoa(m.SMTPPort()), "MAIL_FROM": "noreply@authstack.test",
		"FRONTEND_URL": "https://app.authstack.test", "HOST": "127.0.0.1", "PORT": strconv.Itoa(port),
		"METRICS_ADDR": "127.0.0.1:" + strconv.Itoa(testservers.FreePort(t)), "AUTH_ARGON2_MEMORY_KIB": "8192", "AUTH_ARGON2_ITERATIONS": "1",
	}
	if code, _, _ := run(t, map[string]string{"PORT": strconv.Itoa(port)}, "healthcheck"); code != 1 {
		t.Fatalf("healthcheck with nothing listening: %d", code)
	}
	ro := t.TempDir()
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	cmd := command(env, "serve")
	cmd.Dir = ro
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready in 30s; logs:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, errOut := run(t, map[string]string{"PORT": strconv.Itoa(port), "HOST": "127.0.0.1"}, "healthcheck"); code != 0 {
		t.Fatalf("healthcheck: %d %s", code, errOut)
	}
	resp, err := http.Post(base+"/auth/signup", "application/json", strings.NewReader(`{"email":"proc@example.com","password":"process password"}`))
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("signup: %v %v", resp, err)
	}
	resp.Body.Close()
	m.WaitForMessage(t, "proc@example.com", 15*time.Second)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20s after SIGTERM")
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"authserver stopped"`) || !strings.Contains(out, `"level":"INFO"`) {
		t.Fatalf("logs are not JSON or shutdown not logged:\n%s", out)
	}
	if entries, _ := os.ReadDir(ro); len(entries) != 0 {
		t.Fatalf("wrote files: %v", entries)
	}
}
