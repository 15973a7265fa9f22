package resources

import (
	"os/exec"
	"testing"
)

// TestRedisBootstrapScriptPassesShellcheck lints the embedded bootstrap script as the
// POSIX sh it runs under (busybox sh in the Redis image). shellcheck is installed by
// hack/test-deps.sh.
func TestRedisBootstrapScriptPassesShellcheck(t *testing.T) {
	path, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatalf("shellcheck is not installed (hack/test-deps.sh installs it): %v", err)
	}
	out, err := exec.Command(path, "--shell=sh", "--severity=style", "redis_bootstrap.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck redis_bootstrap.sh: %v\n%s", err, out)
	}
	if RedisBootstrapScript() == "" {
		t.Fatal("the embedded script is empty")
	}
}
