//go:build realnode

package realnode

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

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRealNodeDemo: make demo picks the real node on this machine (root, the
// node's binaries built, the suite's own node the one running) and ends with
// the walk done through the authserver's Service. It runs on the suite's
// cluster (one real node per machine), so it stops only the demo's operator
// and deletes what the demo created, not the cluster.
func TestRealNodeDemo(t *testing.T) {
	if _, err := LocalImages(); err != nil { // built and imported once for the suite
		t.Fatal(err)
	}
	demoDir := filepath.Join(env.dir, "demo")
	cmd := exec.Command(filepath.Join(env.root, "hack/demo.sh"), "up")
	cmd.Dir, cmd.Env = env.root, append(env.clusterEnv, "AUTHSTACK_DEMO_DIR="+demoDir, "AUTHSTACK_DEMO_NODE=real")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(demoDir, "pids", "operator")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		_ = env.c.Delete(Ctx(t), &authv1alpha1.AuthStack{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "example"}})
		_ = env.c.Delete(Ctx(t), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "smtp"}})
		_ = env.c.Delete(Ctx(t), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "smtp"}})
	})
	start := time.Now()
	err := cmd.Run()
	t.Logf("hack/demo.sh up on the real node (its cluster already up): %s\n%s", time.Since(start).Round(time.Second), out.String())
	if err != nil {
		t.Fatalf("hack/demo.sh up: %v\n%s", err, out.String())
	}
	for _, want := range []string{"runs on a real node", "waiting for Ready", "example   True", "6. session", "on the real node"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out.String())
		}
	}
}
