package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// cluster is a private local control plane (hack/dev-cluster.sh) with an audit log.
type cluster struct {
	root       string // the repository
	env        []string
	kubeconfig string
	logs       string // its logs folder, where audit.log is written
	stopped    bool
}

// startCluster starts hack/dev-cluster.sh with its state in dir, its ports at
// AUTHSTACK_DEV_PORT_OFFSET=portOffset, and the audit policy; the cluster is stopped
// by its watcher if this process dies.
func startCluster(root, dir string, portOffset int) (*cluster, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "cluster")
	c := &cluster{root: root, logs: filepath.Join(state, "logs"), env: append(os.Environ(),
		"AUTHSTACK_DEV_DIR="+state,
		fmt.Sprintf("AUTHSTACK_DEV_PORT_OFFSET=%d", portOffset),
		fmt.Sprintf("AUTHSTACK_DEV_WATCH_PID=%d", os.Getpid()),
		"AUTHSTACK_DEV_AUDIT_POLICY="+policy)}
	up := exec.Command(filepath.Join(root, "hack/dev-cluster.sh"), "up")
	up.Env, up.Stderr = c.env, os.Stderr
	out, err := up.Output()
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("starting the local cluster (hack/dev-cluster.sh up): %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	c.kubeconfig = strings.TrimSpace(lines[len(lines)-1])
	return c, nil
}

func (c *cluster) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	down := exec.Command(filepath.Join(c.root, "hack/dev-cluster.sh"), "down")
	down.Env, down.Stdout, down.Stderr = c.env, os.Stderr, os.Stderr
	if err := down.Run(); err != nil {
		logf("stopping the cluster: %v", err)
	}
}

// operator is the manager binary running as a local process, like in the e2e tests.
type operator struct {
	cmd     *exec.Cmd
	metrics string // URL of its /metrics
	done    chan struct{}
}

func startOperator(bin, kubeconfig, logPath string, metricsPort int) (*operator, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--leader-elect=false",
		"--metrics-bind-address", addr, "--health-probe-bind-address", "0",
		"--authserver-image", authServerImage)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting the operator: %w", err)
	}
	op := &operator{cmd: cmd, metrics: "http://" + addr + "/metrics", done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(op.done) }()
	return op, nil
}

func (o *operator) pid() int { return o.cmd.Process.Pid }

func (o *operator) exited() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to 20 s, then kills it.
func (o *operator) stop() {
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(20 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.done
	}
}

// reconciles is the operator's controller_runtime_reconcile_total of the authstack
// controller, every result.
func (o *operator) reconciles(ctx context.Context) (float64, error) {
	text, err := scrape(ctx, o.metrics)
	if err != nil {
		return 0, err
	}
	return counterSum(text, "controller_runtime_reconcile_total", map[string]string{"controller": "authstack"})
}
