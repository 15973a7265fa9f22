package kubectlplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers"
	"github.com/leanauth/authstack/controllers/resources"
	"github.com/leanauth/authstack/internal/localstack"
)

// The plugin runs against a real kube-apiserver (envtest) with the CRDs, and the
// real AuthStack controller in a manager per test; the test stands in for the
// job controller and the kubelet (envtest runs neither): it finishes the Jobs.
var (
	restConfig *rest.Config
	k8s        client.Client
	kubeconfig string
	testScheme = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	_ = clientgoscheme.AddToScheme(testScheme)
	_ = authv1alpha1.AddToScheme(testScheme)
	ctrl.SetLogger(logr.Discard())
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest (KUBEBUILDER_ASSETS=%q; run `make test` or hack/control-plane.sh): %v\n", os.Getenv("KUBEBUILDER_ASSETS"), err)
		_ = env.Stop()
		os.Exit(1)
	}
	restConfig = cfg
	if k8s, err = client.New(cfg, client.Options{Scheme: testScheme}); err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "kubectl-authstack-")
	if err != nil {
		panic(err)
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(cfg, kubeconfig); err != nil {
		panic(err)
	}
	pollInterval = 200 * time.Millisecond
	code := m.Run()
	_ = env.Stop()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// writeKubeconfig writes envtest's admin credentials as a kubeconfig with the
// context "envtest" (and a broken current context, so --context is needed).
func writeKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.Contexts["elsewhere"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: "admin"}
	kc.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	kc.CurrentContext = "elsewhere"
	return clientcmd.WriteToFile(*kc, path)
}

// plugin runs `kubectl authstack ARGS --kubeconfig K --context envtest -n ns` in-process.
func run(t *testing.T, ns string, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--kubeconfig", kubeconfig, "--context", "envtest", "-n", ns)
	code := Run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), code
}

// startOperator runs the AuthStack controller for namespace ns until the test ends.
func startOperator(t *testing.T, ns string) {
	t.Helper()
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 testScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions([]string{ns}),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &controllers.AuthStackReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("authstack-operator"), AuthServerImage: "ghcr.io/leanauth/authserver:test",
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = mgr.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// newStack creates a namespace with the Secrets a stack with backups needs and an
// operator for it (newNamespace), and the AuthStack "auth" (sampleStack).
func newStack(t *testing.T) string {
	t.Helper()
	ns := newNamespace(t)
	if err := k8s.Create(context.Background(), sampleStack(ns, "auth")); err != nil {
		t.Fatal(err)
	}
	return ns
}

// newNamespace creates a namespace, the Secrets sampleStack names and an operator for it.
func newNamespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "plugin-"}}
	if err := k8s.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	for name, data := range map[string]map[string]string{
		"db":         {"url": "postgres://auth:s3cret@db.example:5432/auth?sslmode=require"},
		"redis":      {"url": "redis://:r3dis@redis.example:6379/0"},
		"smtp":       {"password": "smtp-pass"},
		"s3":         {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key"},
		"backup-key": {"public.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----", "private.asc": "-----BEGIN PGP PRIVATE KEY BLOCK-----"},
	} {
		if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}); err != nil {
			t.Fatal(err)
		}
	}
	startOperator(t, ns)
	return ns
}

// sampleStack is an AuthStack with external PostgreSQL and Redis and backups of both.
func sampleStack(ns, name string) *authv1alpha1.AuthStack {
	return &authv1alpha1.AuthStack{
		TypeMeta:   metav1.TypeMeta{APIVersion: authv1alpha1.GroupVersion.String(), Kind: "AuthStack"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authv1alpha1.AuthStackSpec{
			AuthServer: authv1alpha1.AuthServerSpec{FrontendURL: "https://app.example.com", MailFrom: "Example <noreply@example.com>"},
			Database:   authv1alpha1.DatabaseSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
			Redis:      authv1alpha1.RedisSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "redis", Key: "url"}},
			SMTP: authv1alpha1.SMTPSpec{Host: "smtp.example.com", Username: "mailer",
				PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: "smtp", Key: "password"}},
			Backup: &authv1alpha1.BackupSpec{
				Postgres: authv1alpha1.BackupJobSpec{Schedule: "0 3 * * *", RetentionDays: 30},
				Redis:    authv1alpha1.BackupJobSpec{Schedule: "0 */6 * * *", RetentionDays: 7},
				Destination: authv1alpha1.BackupDestination{S3: authv1alpha1.S3Destination{
					Bucket: "auth-backups", Prefix: "prod", CredentialsSecretRef: &authv1alpha1.SecretNameRef{Name: "s3"}}},
				Encryption: authv1alpha1.BackupEncryption{PublicKeySecretRef: authv1alpha1.SecretKeyRef{Name: "backup-key", Key: "public.asc"}},
			},
		},
	}
}

func eventually(t *testing.T, what string, f func() error, explain ...func() string) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		last = f()
		return last == nil, nil
	})
	if err != nil {
		for _, e := range explain {
			last = fmt.Errorf("%w; %s", last, e())
		}
		t.Fatalf("%s: %v", what, last)
	}
}

func getStack(t *testing.T, ns string) *authv1alpha1.AuthStack {
	t.Helper()
	return getNamed(t, ns, "auth")
}

func getNamed(t *testing.T, ns, name string) *authv1alpha1.AuthStack {
	t.Helper()
	var s authv1alpha1.AuthStack
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// finishJob marks a Job finished and gives it a pod whose termination message is
// msg, as the job controller and the kubelet would.
func finishJob(t *testing.T, job *batchv1.Job, ok bool, msg string) {
	t.Helper()
	ctx := context.Background()
	now := metav1.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-pod", Namespace: job.Namespace, Labels: map[string]string{batchv1.JobNameLabel: job.Name}},
		Spec:       *job.Spec.Template.Spec.DeepCopy(),
	}
	for k, v := range job.Spec.Template.Labels {
		pod.Labels[k] = v
	}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: job.Spec.Template.Spec.Containers[0].Name, Image: "x", ImageID: "x",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: msg, FinishedAt: now, StartedAt: now}}}}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	job.Status.StartTime = &now
	if ok {
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now}}
		job.Status.CompletionTime = &now
		job.Status.Succeeded = 1
	} else {
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: "BackoffLimitExceeded"},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: "BackoffLimitExceeded"}}
		job.Status.Failed = 1
	}
	if err := k8s.Status().Update(ctx, job); err != nil {
		t.Fatal(err)
	}
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !containsLine(out, w) {
			t.Errorf("output lacks a line matching %q:\n%s", w, out)
		}
	}
}

// containsLine: some line holds every whitespace-separated word of w, in order.
func containsLine(out, w string) bool {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.Join(strings.Fields(line), " "), true
		for _, f := range strings.Fields(w) {
			i := strings.Index(rest, f)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(f):]
		}
		if ok {
			return true
		}
	}
	return false
}

// TestBackupWaitsAndPrintsResult: `backup` sets the annotation, waits until the
// operator ran the Jobs and status.backups reports them, prints each Job's
// outcome and exits 1 when one failed; `status` then shows both runs.
func TestBackupWaitsAndPrintsResult(t *testing.T) {
	ns := newStack(t)
	var (
		out  string
		code int
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, code = run(t, ns, "backup", "auth", "--request", "r1", "--timeout", "90s")
	}()
	stack := getStack(t, ns)
	pg, rd := &batchv1.Job{}, &batchv1.Job{}
	eventually(t, "the on-demand Jobs exist", func() error {
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: resources.OnDemandBackupJobName(stack, "postgres", "r1")}, pg); err != nil {
			return err
		}
		return k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: resources.OnDemandBackupJobName(stack, "redis", "r1")}, rd)
	}, func() string {
		s := getStack(t, ns)
		return fmt.Sprintf("annotations %v status %+v", s.Annotations, s.Status)
	})
	finishJob(t, pg, true, `{"kind":"postgres","ok":true,"stored":true,"object":"prod/postgres/20261129T120000Z.dump.gz.gpg","size_bytes":4300}`)
	finishJob(t, rd, false, `{"kind":"redis","ok":false,"error":"authenticating to Redis at redis:6379: WRONGPASS"}`)
	wg.Wait()
	if code != 1 {
		t.Errorf("exit code %d with a failed Job, want 1:\n%s", code, out)
	}
	wantLines(t, out,
		`backup "r1" requested for AuthStack `+ns+`/auth`,
		"KIND JOB RESULT OBJECT SIZE MESSAGE",
		"postgres "+pg.Name+" succeeded prod/postgres/20261129T120000Z.dump.gz.gpg 4.2 KiB -",
		"redis "+rd.Name+" failed - - authenticating to Redis at redis:6379: WRONGPASS",
		"error: a backup Job failed")

	// The plugin reads the Jobs; status.backups follows at the operator's next reconcile.
	eventually(t, "status shows the failed redis backup", func() error {
		out, code = run(t, ns, "status", "auth")
		if code != 0 || !containsLine(out, "redis - - - ago: authenticating to Redis") {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
	wantLines(t, out,
		"AuthStack "+ns+"/auth (generation 1, observed 1)",
		"Paused: no",
		"TYPE STATUS REASON AGE MESSAGE",
		"BackupsHealthy False BackupFailed",
		"authserver 0/0 ready", "pooler 0/0 ready",
		"KIND LAST SUCCESS OBJECT SIZE LAST FAILURE",
		"postgres ago prod/postgres/20261129T120000Z.dump.gz.gpg 4.2 KiB -",
		"redis - - - ago: authenticating to Redis at redis:6379: WRONGPASS",
		`last backup-now request: "r1"`)

	// The same request again is refused (it would never run); a new one succeeds.
	if out, code := run(t, ns, "backup", "auth", "--request", "r1"); code != 1 || !strings.Contains(out, "pass a new --request") {
		t.Errorf("the same request again: exit %d\n%s", code, out)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, code = run(t, ns, "backup", "auth", "--request", "r2", "--timeout", "90s")
	}()
	for _, kind := range []string{"postgres", "redis"} {
		j := &batchv1.Job{}
		eventually(t, "the second request's "+kind+" Job", func() error {
			return k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: resources.OnDemandBackupJobName(stack, kind, "r2")}, j)
		})
		finishJob(t, j, true, fmt.Sprintf(`{"kind":%q,"ok":true,"stored":true,"object":"prod/%s/20261129T130000Z.gz.gpg","size_bytes":100}`, kind, kind))
	}
	wg.Wait()
	if code != 0 {
		t.Errorf("exit %d when every Job succeeded:\n%s", code, out)
	}
	wantLines(t, out, "postgres succeeded prod/postgres/20261129T130000Z.gz.gpg 100 B", "redis succeeded prod/redis/20261129T130000Z.gz.gpg 100 B")
}

// TestErrors: backup without spec.backup sets no annotation and says why; a missing stack is named.
func TestErrors(t *testing.T) {
	ns := newStack(t)
	s := getStack(t, ns)
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Backup = nil
	if err := k8s.Patch(context.Background(), s, patch); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, ns, "backup", "auth")
	if code != 1 || !strings.Contains(out, "has no spec.backup") {
		t.Errorf("backup without spec.backup: exit %d\n%s", code, out)
	}
	if a := getStack(t, ns).Annotations[resources.AnnotationBackupNow]; a != "" {
		t.Errorf("the annotation was set anyway: %q", a)
	}
	out, code = run(t, ns, "status", "missing")
	if code != 1 || !strings.Contains(out, "AuthStack "+ns+"/missing not found") {
		t.Errorf("status of a missing stack: exit %d\n%s", code, out)
	}
	out, _ = run(t, ns, "status", "auth")
	wantLines(t, out, "Backups:", "not configured (spec.backup)")
}

// TestThroughKubectl: the built kubectl-authstack on PATH is `kubectl authstack`,
// with kubectl's flags passed through to it.
func TestThroughKubectl(t *testing.T) {
	ns := newStack(t)
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-authstack"), "github.com/leanauth/authstack/cmd/kubectl-authstack")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, out)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the operator wrote status", func() error {
		if getStack(t, ns).Status.ObservedGeneration == 0 {
			return fmt.Errorf("no status yet")
		}
		return nil
	})
	cmd := exec.Command(localstack.KubectlBin(root), "authstack", "status", "auth", "--kubeconfig", kubeconfig, "--context", "envtest", "-n", ns)
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl authstack status: %v\n%s", err, out)
	}
	wantLines(t, string(out), "AuthStack "+ns+"/auth (generation 1, observed 1)", "DatabaseReady True External")
}

// TestPepperPatch: rotate-pepper raises the version by one from the current one,
// sends every version of a pepper of one's own, and refuses while a rotation rolls out.
func TestPepperPatch(t *testing.T) {
	stack := func(spec, status string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal([]byte(`{"spec":`+spec+`,"status":`+status+`}`), &u.Object); err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, tc := range []struct {
		name, spec, status, secret, key string
		next                            int64
		patch, err                      string
	}{
		{name: "first rotation", spec: `{}`, status: `{}`, next: 2, patch: `{"spec":{"pepperRotation":{"version":2}}}`},
		{name: "after version 3", spec: `{"pepperRotation":{"version":3,"retireBelow":3}}`, status: `{"pepper":{"currentVersion":3}}`,
			next: 4, patch: `{"spec":{"pepperRotation":{"version":4}}}`},
		{name: "rolling out", spec: `{"pepperRotation":{"version":3}}`, status: `{"pepper":{"currentVersion":2}}`, err: "still rolling out"},
		{name: "own pepper", spec: `{"pepper":{"secretRef":{"name":"p","key":"v1"}},"pepperRotation":{"version":2,"peppers":[{"version":2,"secretRef":{"name":"p","key":"v2"}}]}}`,
			status: `{"pepper":{"currentVersion":2}}`, secret: "p", key: "v3", next: 3,
			patch: `{"spec":{"pepperRotation":{"peppers":[{"secretRef":{"key":"v2","name":"p"},"version":2},{"secretRef":{"key":"v3","name":"p"},"version":3}],"version":3}}}`},
		{name: "own pepper without --secret", spec: `{"pepper":{"secretRef":{"name":"p","key":"v1"}}}`, status: `{}`, err: "pass --secret and --key of version 2"},
		{name: "--secret with a generated pepper", spec: `{}`, status: `{}`, secret: "p", key: "k", err: "the operator generates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, patch, err := pepperPatch(stack(tc.spec, tc.status), tc.secret, tc.key)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || next != tc.next || string(patch) != tc.patch {
				t.Fatalf("got %d %s %v, want %d %s", next, patch, err, tc.next, tc.patch)
			}
		})
	}
}
