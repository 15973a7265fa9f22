//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// make demo, on a cluster of its own: it ends with the signup walk done and
// says that the pods are simulated; make demo-down leaves none of the
// processes it started running.
func TestDemoUpAndDown(t *testing.T) {
	dir := filepath.Join(env.dir, "demo")
	denv := append(os.Environ(),
		"AUTHSTACK_DEV_DIR="+filepath.Join(dir, "cluster"),
		"AUTHSTACK_DEMO_DIR="+filepath.Join(dir, "demo"),
		"AUTHSTACK_DEV_PORT_OFFSET=2000",
		"AUTHSTACK_DEMO_NODE=kwok") // the real node's demo: test/realnode (TestRealNodeDemo)
	run := func(arg string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(env.root, "hack/demo.sh"), arg)
		cmd.Dir, cmd.Env = env.root, denv
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		t.Logf("hack/demo.sh %s: %s", arg, time.Since(start).Round(time.Second))
		if err != nil {
			t.Fatalf("hack/demo.sh %s: %v\n%s", arg, err, out.String())
		}
		return out.String()
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			run("down")
		}
	})
	out := run("up")
	for _, want := range []string{
		"simulated by kwok",
		"example   True",
		"<secret example-database/url>",
		"6. session",
		"Done in",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}

	// Every process it started, by pid, before stopping it.
	var pids []int
	for _, d := range []string{filepath.Join(dir, "demo", "pids"), filepath.Join(dir, "cluster", "pids")} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			if err != nil {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	if len(pids) < 8 {
		t.Fatalf("found %d pid files, want the 3 demo processes and 5 cluster ones", len(pids))
	}
	// And the servers the demo's helpers started (their folders carry the helper's pid).
	servers := 0
	for _, d := range []string{"servers", "authserver"} {
		b, _ := os.ReadFile(filepath.Join(dir, "demo", "pids", d))
		marker := "-" + strings.TrimSpace(string(b)) + "-"
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			cl, _ := os.ReadFile(p)
			if bytes.Contains(cl, []byte("authstack-")) && bytes.Contains(cl, []byte(marker)) {
				if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
					pids = append(pids, pid)
					servers++
				}
			}
		}
	}
	if servers < 3 {
		t.Errorf("found %d server processes of the demo (PostgreSQL, Redis, mailpit, pgbouncer), want at least 3", servers)
	}
	run("down")
	downed = true
	time.Sleep(time.Second)
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !bytes.Contains(b, []byte(") Z ")) {
				t.Errorf("pid %d still runs after demo down", pid)
			}
		}
	}
}
