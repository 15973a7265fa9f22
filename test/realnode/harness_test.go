//go:build realnode

// Package realnode runs pods for real: a local control plane with one real
// node (hack/dev-cluster.sh up --real-node: containerd, runc, CNI bridge,
// kubelet, kube-proxy, CoreDNS, kube-router's NetworkPolicy firewall). Run it
// as root with `go test -tags realnode ./test/realnode/` (make test-e2e runs it
// after the kwok suite).
//
// This file is the harness every test of the suite shares: TestMain starts the
// cluster in a temporary folder and stops it at the end, then checks the host
// is as it was (no process, mount, bridge, ipset or iptables rule left); the
// helpers import images, make namespaces under Pod Security "restricted", run
// probe pods (netcheck) that send real traffic, and run the operator.
package realnode

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/leanauth/authstack/internal/localstack"
)

// env is the shared cluster.
var env struct {
	root       string // the repository
	dir        string // temporary folder: cluster state, binaries, image archives
	state      string // AUTHSTACK_DEV_DIR of the cluster
	kubeconfig string
	c          client.Client
	clusterEnv []string // environment for hack/dev-cluster.sh and hack/real-node.sh
}

// NetcheckImage is the probe image every test can run (test/realnode/netcheck).
const NetcheckImage = "localhost/authstack/netcheck:e2e"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	start := time.Now()
	ctrllog.SetLogger(logr.Discard())
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "realnode: "+format+"\n", a...)
		return 1
	}
	if os.Geteuid() != 0 {
		return fail("the real node needs root (containers, network namespaces, iptables)")
	}
	root, err := localstack.RepoRoot()
	if err != nil {
		return fail("%v", err)
	}
	env.root = root
	before, err := takeHostSnapshot()
	if err != nil {
		return fail("reading the host before the cluster starts: %v", err)
	}
	dir, err := os.MkdirTemp("", "authstack-realnode-")
	if err != nil {
		return fail("%v", err)
	}
	env.dir = dir
	env.state = filepath.Join(dir, "cluster")
	keep := os.Getenv("E2E_KEEP") != ""
	env.clusterEnv = append(os.Environ(),
		"AUTHSTACK_DEV_DIR="+env.state,
		fmt.Sprintf("AUTHSTACK_DEV_WATCH_PID=%d", os.Getpid()),
		"AUTHSTACK_DEV_PORT_OFFSET=2000") // away from a `make dev-cluster` cluster and the kwok suite's
	code := func() int {
		defer func() {
			if err := script("dev-cluster.sh", "down"); err != nil {
				fmt.Fprintln(os.Stderr, "realnode: stopping the cluster:", err)
			}
		}()
		out, err := scriptOutput("dev-cluster.sh", "up", "--real-node")
		if err != nil {
			return fail("starting the local cluster with a real node (hack/dev-cluster.sh up --real-node): %v", err)
		}
		env.kubeconfig = strings.TrimSpace(lastLine(out))
		fmt.Fprintf(os.Stderr, "realnode: cluster with a real node up after %s\n", time.Since(start).Round(time.Second))
		if env.c, err = newClient(env.kubeconfig); err != nil {
			return fail("%v", err)
		}
		if err := kubectl("apply", "--server-side", "-f", filepath.Join(root, "config/crd/bases")); err != nil {
			return fail("installing the CRD: %v", err)
		}
		if err := BuildGoImage(NetcheckImage, "./test/realnode/netcheck", []string{"/netcheck"}); err != nil {
			return fail("building the netcheck image: %v", err)
		}
		fmt.Fprintf(os.Stderr, "realnode: ready after %s\n", time.Since(start).Round(time.Second))
		code := m.Run()
		if code != 0 {
			keep = true
		}
		return code
	}()
	after, err := takeHostSnapshot()
	if err != nil {
		return fail("reading the host after the cluster stopped: %v", err)
	}
	if d := before.diff(after); d != "" {
		fmt.Fprintf(os.Stderr, "realnode: hack/dev-cluster.sh down left this behind:\n%s\n", d)
		code, keep = 1, true
	}
	if keep {
		fmt.Fprintln(os.Stderr, "realnode: state kept in", dir, "(logs in cluster/logs, container logs in cluster/node/pod-logs, those of a failed test's namespace in failed-pod-logs)")
	} else {
		os.RemoveAll(dir)
	}
	return code
}

// --- the host before and after ---------------------------------------------------------

// hostSnapshot is what the real node changes on the host while it runs.
type hostSnapshot struct {
	iptables []string // iptables-save without counters
	ipsets   []string
	links    []string
	mounts   []string // mount points under the temporary folder
	procs    []string // processes whose command line names the temporary folder
}

func takeHostSnapshot() (hostSnapshot, error) {
	var s hostSnapshot
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return s, fmt.Errorf("iptables-save (hack/test-deps.sh installs iptables): %w", err)
	}
	s.iptables = iptablesRules(string(out))
	if out, err = exec.Command("ipset", "list", "-n").Output(); err != nil {
		return s, fmt.Errorf("ipset list (hack/test-deps.sh installs ipset): %w", err)
	}
	s.ipsets = strings.Fields(string(out))
	if out, err = exec.Command("ip", "-o", "link", "show").Output(); err != nil {
		return s, fmt.Errorf("ip link: %w", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			s.links = append(s.links, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
		}
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 1 && env.dir != "" && strings.HasPrefix(f[1], env.dir) {
			s.mounts = append(s.mounts, f[1])
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && env.dir != "" && bytes.Contains(b, []byte(env.dir)) {
			s.procs = append(s.procs, filepath.Base(filepath.Dir(p))+": "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
	}
	return s, nil
}

// iptablesRules keeps the rules and the chains of iptables-save output that
// filter anything: built-in chains with policy ACCEPT and no rules are how the
// nftables backend shows a table once anyone has used it, the same as none.
func iptablesRules(save string) []string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, "-A "):
			out = append(out, l)
		case strings.HasPrefix(l, ":"): // ":CHAIN POLICY [packets:bytes]"
			f := strings.Fields(l)
			builtin := map[string]bool{":PREROUTING": true, ":INPUT": true, ":FORWARD": true, ":OUTPUT": true, ":POSTROUTING": true}
			if len(f) > 1 && !(builtin[f[0]] && f[1] == "ACCEPT") {
				out = append(out, f[0]+" "+f[1])
			}
		}
	}
	return out
}

// diff lists what after has that s has not (and iptables lines it lost).
func (s hostSnapshot) diff(after hostSnapshot) string {
	var b strings.Builder
	changed := func(what, sign string, old, cur []string) {
		have := map[string]bool{}
		for _, x := range old {
			have[x] = true
		}
		for _, x := range cur {
			if !have[x] {
				fmt.Fprintf(&b, "  %s: %s %s\n", what, sign, x)
			}
		}
	}
	changed("iptables", "+", s.iptables, after.iptables)
	changed("iptables", "-", after.iptables, s.iptables)
	changed("ipset", "+", s.ipsets, after.ipsets)
	changed("link", "+", s.links, after.links)
	changed("mount", "+", s.mounts, after.mounts)
	changed("process", "+", s.procs, after.procs)
	return b.String()
}

// --- scripts, kubectl, clients -------------------------------------------------------------

func script(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(env.root, "hack", name), args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env.clusterEnv, os.Stderr, os.Stderr
	return cmd.Run()
}

func scriptOutput(name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(env.root, "hack", name), args...)
	cmd.Env, cmd.Stderr = env.clusterEnv, os.Stderr
	out, err := cmd.Output()
	return string(out), err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func kubectl(args ...string) error { return localstack.Kubectl(env.root, env.kubeconfig, args...) }

func newClient(kubeconfig string) (client.Client, error) {
	return localstack.NewClient(kubeconfig, 100, 200)
}

// Ctx is a context for one test, ended with it.
func Ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	return c
}

// Eventually polls f every half second until it returns nil or the timeout
// passes, then fails the test with f's last error.
func Eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// --- images ------------------------------------------------------------------------------------

// ImportImages imports OCI image archives (as hack/oci-image.sh writes them)
// into the node's containerd, where the kubelet finds them without a pull.
func ImportImages(files ...string) error {
	return script("real-node.sh", append([]string{"import"}, files...)...)
}

// BuildGoImage builds a Go main package of this repository as a static binary
// and imports it as a one-layer image REF whose entrypoint is ENTRYPOINT (the
// binary sits at /<last element of the package>), user 65532.
func BuildGoImage(ref, pkg string, entrypoint []string) error {
	rootfs := filepath.Join(env.dir, "images", filepath.Base(pkg))
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(rootfs, filepath.Base(pkg)), pkg)
	build.Dir, build.Env, build.Stdout, build.Stderr = env.root, append(os.Environ(), "CGO_ENABLED=0"), os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building %s: %w", pkg, err)
	}
	tar := rootfs + ".tar"
	ep := `["` + strings.Join(entrypoint, `","`) + `"]`
	if err := script("oci-image.sh", ref, rootfs, tar, ep, "65532:65532"); err != nil {
		return err
	}
	return ImportImages(tar)
}

// --- node facts ------------------------------------------------------------------------------

// ContainerLog returns what a container of a pod wrote (the kubelet serves no
// logs through the API server here: it listens on 127.0.0.1 only).
func ContainerLog(namespace, pod, container string) string {
	files, _ := filepath.Glob(filepath.Join(env.state, "node", "pod-logs", namespace+"_"+pod+"_*", container, "*.log"))
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}

// HostProcesses returns the host's processes (pid: command line) that run in
// the cgroups of the pod with this UID: proof its containers really run.
func HostProcesses(podUID string) []string {
	var out []string
	cgroups, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	marker := "pod" + podUID
	for _, p := range cgroups {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(marker)) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		out = append(out, filepath.Base(filepath.Dir(p))+": "+strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))))
	}
	return out
}

// httpGet is a GET from the test process (on the host) with a short timeout.
func httpGet(url string) (int, string, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}
