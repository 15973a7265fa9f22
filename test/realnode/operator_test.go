//go:build realnode

package realnode

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/internal/localstack"
	"github.com/leanauth/authstack/internal/servers"
)

// Images are the operator's image flags: local images imported into the node.
type Images struct {
	AuthServer, PgBouncer, Redis string
}

// Operator is the operator built from this checkout, run as a host process
// (the API server listens on 127.0.0.1, which pods cannot reach).
type Operator struct {
	LogPath string
	proc    *localstack.Proc
}

var buildManager = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(env.dir, "bin", "manager")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	cmd.Dir, cmd.Stdout, cmd.Stderr = env.root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building ./cmd/manager: %w", err)
	}
	return bin, nil
})

// StartOperator runs the operator with these images, watching namespace only
// (so tests can each run their own), and stops it after the test. Its log is
// in the kept state folder when a test fails.
func StartOperator(t *testing.T, namespace string, images Images) *Operator {
	t.Helper()
	bin, err := buildManager()
	if err != nil {
		t.Fatal(err)
	}
	hport, err := servers.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	o := &Operator{LogPath: filepath.Join(env.dir, "logs", "operator-"+namespace+".log")}
	_ = os.MkdirAll(filepath.Dir(o.LogPath), 0o755)
	o.proc, err = localstack.StartProc(bin, []string{
		"--kubeconfig", env.kubeconfig, "--leader-elect=false", "--watch-namespace", namespace,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", hport),
		"--authserver-image", images.AuthServer,
		"--pgbouncer-image", images.PgBouncer,
		"--redis-image", images.Redis,
	}, os.Environ(), o.LogPath)
	if err != nil {
		t.Fatalf("starting the operator: %v", err)
	}
	t.Cleanup(o.proc.Stop)
	hc := &http.Client{Timeout: time.Second}
	if err := o.proc.WaitReady(60*time.Second, func() error {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", hport))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		t.Fatalf("the operator is not ready (log %s): %v", o.LogPath, err)
	}
	return o
}

// WaitStackReady waits until the AuthStack is Ready for its current generation.
func WaitStackReady(t *testing.T, namespace, name string, timeout time.Duration) *authv1alpha1.AuthStack {
	t.Helper()
	var s authv1alpha1.AuthStack
	Eventually(t, timeout, "AuthStack "+namespace+"/"+name+" Ready", func() error {
		if err := env.c.Get(Ctx(t), client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
			return err
		}
		c := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionReady)
		if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == s.Generation {
			return nil
		}
		var conds []string
		for _, c := range s.Status.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
		}
		return fmt.Errorf("generation %d: %s", s.Generation, strings.Join(conds, "; "))
	})
	return &s
}
