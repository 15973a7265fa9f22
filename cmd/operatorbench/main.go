// Command operatorbench is the scale benchmark of the operator (the targets and
// results are in docs/benchmarks.md, "Operator at scale"). On a private local control
// plane (hack/dev-cluster.sh, with an API server audit log) it measures, in one run:
//
//  1. a plain client: for each of N stacks it server-side applies the objects the
//     operator's own builders (controllers/resources) render, one at a time, then waits
//     until every Deployment is available: the time the work takes without an operator;
//  2. the operator (cmd/manager, a local process), with 2,000 unrelated Secrets and
//     ConfigMaps in its namespaces: the time from creating N AuthStacks until all are
//     Ready, its peak RSS (VmHWM), its writes in the quiet minute after (from the audit
//     log, leases and events left out), and the API requests of one no-op reconcile
//     (every stack touched once; reconciles from controller_runtime_reconcile_total).
//
// It prints the four figures with their targets on stdout and leaves nothing behind
// (the cluster is stopped and its folder removed; -keep, or a failure, keeps it). Run it from the
// repository root:
//
//	make bench-operator                 # go run ./cmd/operatorbench
//	go run ./cmd/operatorbench -stacks 20 -namespaces 4 -noise 200 -quiet 10s   # a warm-up
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/leanauth/authstack/controllers/resources"
	"github.com/leanauth/authstack/internal/localstack"
	"github.com/leanauth/authstack/internal/procstat"
	"github.com/leanauth/authstack/internal/servers"
)

type options struct {
	stacks, namespaces int
	noise, noiseBytes  int
	quiet              time.Duration
	portOffset         int
	timeout            time.Duration
	keep               bool
}

func main() {
	var o options
	flag.IntVar(&o.stacks, "stacks", 200, "AuthStacks (and plain-client stacks) to create")
	flag.IntVar(&o.namespaces, "namespaces", 20, "namespaces to spread them over")
	flag.IntVar(&o.noise, "noise", 2000, "unrelated objects in the operator's namespaces (half Secrets, half ConfigMaps)")
	flag.IntVar(&o.noiseBytes, "noise-bytes", 4096, "data bytes in each unrelated object")
	flag.DurationVar(&o.quiet, "quiet", 60*time.Second, "window after convergence in which the operator's writes are counted")
	flag.IntVar(&o.portOffset, "port-offset", 2000, "AUTHSTACK_DEV_PORT_OFFSET of the private cluster (the e2e tests use 1000)")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "hard limit for the whole run")
	flag.BoolVar(&o.keep, "keep", false, "keep the cluster state, logs and audit log (the folder is printed)")
	flag.Parse()
	if o.stacks < 1 || o.namespaces < 1 || o.namespaces > o.stacks {
		fmt.Fprintln(os.Stderr, "operatorbench: want 1 <= -namespaces <= -stacks")
		os.Exit(2)
	}
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancelT := context.WithTimeout(ctx, o.timeout)
	err := run(ctx, o)
	cancelT()
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "operatorbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "operatorbench %s: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) (err error) {
	root, err := localstack.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "authstack-operatorbench-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep || err != nil {
			logf("state, logs and audit log kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	loadStart := procstat.LoadAvg()

	managerBin := filepath.Join(dir, "bin", "manager") // user agent "manager/...", as in the image
	logf("building ./cmd/manager")
	build := exec.CommandContext(ctx, "go", "build", "-o", managerBin, "./cmd/manager")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the operator: %w", err)
	}

	logf("starting a private cluster in %s", dir)
	cl, err := startCluster(root, dir, o.portOffset)
	if err != nil {
		return err
	}
	defer cl.stop()
	b, err := newBench(cl.kubeconfig, o)
	if err != nil {
		return err
	}
	if err := b.installCRD(ctx, filepath.Join(root, "config/crd/bases")); err != nil {
		return err
	}
	spec, err := b.defaultedSpec(ctx)
	if err != nil {
		return err
	}
	objs, err := renderStack(benchStack("default", 0, spec), make([]byte, resources.PepperBytes))
	if err != nil {
		return err
	}
	if err := b.addNodes(ctx, filepath.Join(root, "hack/kwok/node.yaml"), podsPerStack(objs)); err != nil {
		return err
	}

	var res results
	res.stacks, res.namespaces, res.noise = o.stacks, o.namespaces, o.noise
	if err := b.rawPhase(ctx, spec, &res); err != nil {
		return fmt.Errorf("plain client: %w", err)
	}

	port, err := servers.FreePort()
	if err != nil {
		return err
	}
	if err := b.operatorPhase(ctx, spec, managerBin, filepath.Join(dir, "operator.log"), port, &res); err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	res.loadStart, res.loadEnd = loadStart, procstat.LoadAvg()

	logf("stopping the cluster")
	cl.stop()
	reqs, err := readAuditLogs(cl.logs)
	if err != nil {
		return err
	}
	res.fromAudit(reqs)
	res.print(os.Stdout)
	return nil
}
