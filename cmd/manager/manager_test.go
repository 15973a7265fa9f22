package main

// These tests run the operator's run() with real flags against a real API
// server (envtest): probes and metrics answer, leader election takes its
// Lease, --watch-namespace limits what is reconciled, and --authserver-image
// reaches the Deployment. They need KUBEBUILDER_ASSETS (`make test` sets it).

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func startEnv(t *testing.T) (*rest.Config, string) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, or " +
			"KUBEBUILDER_ASSETS=$(hack/control-plane.sh kube-apiserver etcd) go test ./cmd/manager/")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // a failed CRD install leaves etcd and kube-apiserver running otherwise
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return cfg, writeKubeconfig(t, cfg)
}

// writeKubeconfig writes cfg as a kubeconfig file, for the --kubeconfig flag.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("writing the kubeconfig: %v", err)
	}
	return path
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// createStack creates the Secrets a minimal AuthStack references, and the stack.
func createStack(t *testing.T, ctx context.Context, c client.Client, ns, name string) {
	t.Helper()
	enabled := true
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
			StringData: map[string]string{"url": "postgres://auth:secret@postgres.example:5432/auth"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "redis"},
			StringData: map[string]string{"url": "redis://redis.example:6379/0"}},
		&authv1alpha1.AuthStack{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: authv1alpha1.AuthStackSpec{
				AuthServer: authv1alpha1.AuthServerSpec{FrontendURL: "https://app.example.com"},
				Database:   authv1alpha1.DatabaseSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
				Redis:      authv1alpha1.RedisSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "redis", Key: "url"}},
				SMTP:       authv1alpha1.SMTPSpec{Host: "smtp.example.com"},
				Pooler:     authv1alpha1.PoolerSpec{Enabled: &enabled}, // runs --pgbouncer-image
			},
		},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// imagesIn lists the container images of the Deployments in ns.
func imagesIn(ctx context.Context, c client.Client, ns string) ([]string, error) {
	var deps appsv1.DeploymentList
	if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var images []string
	for _, d := range deps.Items {
		for _, ctr := range d.Spec.Template.Spec.Containers {
			images = append(images, ctr.Image)
		}
	}
	return images, nil
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func TestRunServesAndReconcilesWatchedNamespacesOnly(t *testing.T) {
	cfg, kubeconfig := startEnv(t)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("creating the client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createStack(t, ctx, admin, "team-a", "auth")
	createStack(t, ctx, admin, "team-b", "auth")
	createStack(t, ctx, admin, "ignored", "auth")

	metricsAddr, probeAddr := freeAddr(t), freeAddr(t)
	const image = "registry.example.com/authserver:test"
	const pgbouncerImage = "registry.example.com/pgbouncer:test"
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, flag.NewFlagSet("manager", flag.ContinueOnError), []string{
			"--kubeconfig=" + kubeconfig,
			"--metrics-bind-address=" + metricsAddr,
			"--health-probe-bind-address=" + probeAddr,
			"--leader-elect",
			"--leader-election-namespace=default",
			"--watch-namespace=team-a, team-b",
			"--authserver-image=" + image,
			"--pgbouncer-image=" + pgbouncerImage,
			"--zap-log-level=error",
		})
	}()
	stopped := false
	defer func() {
		if !stopped {
			stop()
			<-done
		}
	}()

	// Probes and metrics answer.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		select {
		case err := <-done:
			stopped = true
			return false, fmt.Errorf("run returned early: %v", err)
		default:
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, _, err := httpGet("http://" + probeAddr + path); err != nil || code != http.StatusOK {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the probes on %s did not answer 200: %v", probeAddr, err)
	}

	// Both watched namespaces get an authserver and a pgbouncer with the flags' images.
	for _, ns := range []string{"team-a", "team-b"} {
		var images []string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 45*time.Second, true, func(ctx context.Context) (bool, error) {
			images, err = imagesIn(ctx, admin, ns)
			if err != nil {
				return false, err
			}
			return slices.Contains(images, image) && slices.Contains(images, pgbouncerImage), nil
		})
		if err != nil {
			t.Fatalf("no Deployments running %s and %s in watched namespace %s (images %v): %v", image, pgbouncerImage, ns, images, err)
		}
	}

	code, body, err := httpGet("http://" + metricsAddr + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %d %v", metricsAddr, code, err)
	}
	if !strings.Contains(body, `controller_runtime_reconcile_total{controller="authstack"`) {
		t.Errorf("/metrics has no reconcile counter of the authstack controller")
	}

	// Leader election took its Lease in the namespace it was given.
	var lease coordinationv1.Lease
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "default", Name: "authstack.auth.leanauth.dev"}, &lease); err != nil {
		t.Errorf("no leader election Lease default/authstack.auth.leanauth.dev: %v", err)
	} else if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("the Lease has no holder")
	}

	// The namespace outside --watch-namespace is left alone: its stack was
	// created before the others, so by now it would have been reconciled.
	images, err := imagesIn(ctx, admin, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 0 {
		t.Errorf("namespace ignored is not watched but got Deployments running %v", images)
	}
	var ignored authv1alpha1.AuthStack
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "ignored", Name: "auth"}, &ignored); err != nil {
		t.Fatal(err)
	}
	if ignored.Status.ObservedGeneration != 0 || len(ignored.Status.Conditions) != 0 {
		t.Errorf("the AuthStack in namespace ignored got a status: %+v", ignored.Status)
	}

	// A cancelled context stops the manager cleanly.
	stop()
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after the context ended; want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return within 30s of the context ending")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--watch-namespace=team-a,Team_B"}, "--watch-namespace"},
		{[]string{"--authserver-image="}, "--authserver-image"},
		{[]string{"--pgbouncer-image= "}, "--pgbouncer-image"},
		{[]string{"--redis-image="}, "--redis-image"},
		{[]string{"--no-such-flag"}, "parsing flags"},
	} {
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		err := run(context.Background(), fs, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v; want an error mentioning %s", tc.args, err, tc.want)
		}
	}
}
