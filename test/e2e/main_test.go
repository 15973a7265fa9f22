//go:build e2e

// Package e2e runs the operator, built from this checkout, as a local process
// against a real local control plane (hack/dev-cluster.sh: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, and kwok simulating
// the pods of one fake node). Run it with `make test-e2e` (go test -tags e2e ./test/e2e/).
//
// Each test works in its own namespace. The cluster lives in a temporary
// folder and is stopped at the end, or by its watcher when this process dies.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/leanauth/authstack/internal/localstack"
)

// env is the shared cluster and binaries.
var env struct {
	root          string // the repository
	dir           string // temporary folder: cluster state, binaries, logs
	kubeconfig    string
	c             client.Client
	managerBin    string
	authserverBin string
	op            *operator
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	start := time.Now()
	ctrllog.SetLogger(logr.Discard())
	root, err := localstack.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	env.root = root
	dir, err := os.MkdirTemp("", "authstack-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	env.dir = dir
	keep := os.Getenv("E2E_KEEP") != ""
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "e2e: state kept in", dir)
		}
	}()

	clusterEnv := append(os.Environ(),
		"AUTHSTACK_DEV_DIR="+filepath.Join(dir, "cluster"),
		fmt.Sprintf("AUTHSTACK_DEV_WATCH_PID=%d", os.Getpid()),
		"AUTHSTACK_DEV_PORT_OFFSET=1000") // away from the ports of a `make dev-cluster` cluster
	down := func() {
		cmd := exec.Command(filepath.Join(root, "hack/dev-cluster.sh"), "down")
		cmd.Env, cmd.Stdout, cmd.Stderr = clusterEnv, os.Stderr, os.Stderr
		_ = cmd.Run()
	}
	up := exec.Command(filepath.Join(root, "hack/dev-cluster.sh"), "up")
	up.Env, up.Stderr = clusterEnv, os.Stderr
	out, err := up.Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the local cluster:", err)
		down()
		return 1
	}
	defer down()
	env.kubeconfig = strings.TrimSpace(lastLine(string(out)))
	fmt.Fprintf(os.Stderr, "e2e: cluster up after %s\n", time.Since(start).Round(time.Second))

	env.managerBin = filepath.Join(dir, "bin", "manager")
	env.authserverBin = filepath.Join(dir, "bin", "authserver")
	for bin, pkg := range map[string]string{env.managerBin: "./cmd/manager", env.authserverBin: "./cmd/authserver"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n", pkg, err)
			return 1
		}
	}
	if err := kubectl("apply", "--server-side", "-f", filepath.Join(root, "config/crd/bases")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: installing the CRD:", err)
		return 1
	}
	// kubectl wait fails at once while the CRD has no status yet: retry.
	if err := poll(60*time.Second, func() (bool, error) {
		return kubectl("wait", "--for", "condition=Established", "--timeout", "5s", "crd/authstacks.auth.leanauth.dev") == nil, nil
	}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: CRD not established:", err)
		return 1
	}
	if env.c, err = newClient(env.kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	env.op = newOperator(filepath.Join(dir, "logs"))
	if err := env.op.start(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the operator:", err)
		return 1
	}
	defer env.op.stop()
	fmt.Fprintf(os.Stderr, "e2e: cluster, binaries and operator ready after %s\n", time.Since(start).Round(time.Second))
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: operator log: %s\n", env.op.logPath)
		keep = true
	}
	return code
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func kubectl(args ...string) error { return localstack.Kubectl(env.root, env.kubeconfig, args...) }

func newClient(kubeconfig string) (client.Client, error) {
	return localstack.NewClient(kubeconfig, 200, 400)
}

// ctx is a context for one test, ended with it.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return c
}
