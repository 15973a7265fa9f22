package localstack

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// NewClient is a controller-runtime client for the cluster of kubeconfig that
// knows the built-in kinds and AuthStack's. qps and burst: 0 keeps client-go's
// defaults (the suites raise them to create many objects quickly).
func NewClient(kubeconfig string, qps float32, burst int) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
	}
	if qps > 0 {
		cfg.QPS, cfg.Burst = qps, burst
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// KubectlBin is a kubectl: the one on PATH, else the one hack/control-plane.sh
// builds under the repository root.
func KubectlBin(root string) string {
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	out, err := exec.Command(filepath.Join(root, "hack/control-plane.sh"), "kubectl").Output()
	if err != nil {
		return "kubectl"
	}
	return filepath.Join(strings.TrimSpace(string(out)), "kubectl")
}

// Kubectl runs kubectl against kubeconfig; the error carries its output.
func Kubectl(root, kubeconfig string, args ...string) error {
	cmd := exec.Command(KubectlBin(root), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, buf.String())
	}
	return nil
}
