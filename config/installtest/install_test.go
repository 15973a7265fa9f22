package installtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers"
)

const (
	fieldManager     = "installtest"
	operatorNS       = "authstack-system"
	operatorSA       = "authstack-controller-manager"
	operatorDeploy   = "authstack-controller-manager"
	crdName          = "authstacks.auth.leanauth.dev"
	leaderElectionID = "authstack.auth.leanauth.dev"
)

var (
	repoRoot    = filepath.Join("..", "..")
	installPath = filepath.Join(repoRoot, "dist", "install.yaml")
)

// startAPIServer starts kube-apiserver and etcd from KUBEBUILDER_ASSETS, with no CRDs.
func startAPIServer(t *testing.T) *rest.Config {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, or " +
			"KUBEBUILDER_ASSETS=$(hack/control-plane.sh kube-apiserver etcd) go test ./config/...")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return cfg
}

// readObjects decodes every object of a multi-document YAML file.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v (run `make build-installer`)", path, err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding %s: %v", path, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	if len(objs) == 0 {
		t.Fatalf("%s holds no objects", path)
	}
	return objs
}

// applier applies unstructured objects with server-side apply through the dynamic client.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatalf("creating the discovery client: %v", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("creating the dynamic client: %v", err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func (a *applier) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset() // a CRD applied earlier may have added the kind
		mapping, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", gvk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace()), nil
	}
	return a.dyn.Resource(mapping.Resource), nil
}

func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := a.resource(obj)
	if err != nil {
		return nil, err
	}
	return ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
}

func describe(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", obj.GetKind(), ns, obj.GetName())
	}
	return fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func convert[T any](t *testing.T, obj *unstructured.Unstructured) *T {
	t.Helper()
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &out); err != nil {
		t.Fatalf("converting %s: %v", describe(obj), err)
	}
	return &out
}

// waitEstablished waits until the installed CRD is Established (names accepted, served).
func waitEstablished(t *testing.T, ctx context.Context, a *applier, objs []*unstructured.Unstructured) {
	t.Helper()
	ext := convert[apiextensionsv1.CustomResourceDefinition](t, find(objs, "CustomResourceDefinition", crdName))
	crdGVR := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		u, err := a.dyn.Resource(crdGVR).Get(ctx, crdName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		crd := convert[apiextensionsv1.CustomResourceDefinition](t, u)
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s did not become Established: %v", ext.Name, err)
	}

}

// applySamples applies config/samples (the Secrets and the AuthStack) into ns,
// retrying while the new CRD does not serve writes yet.
func applySamples(t *testing.T, ctx context.Context, a *applier, ns string) {
	t.Helper()
	for _, f := range []string{"secrets.yaml", "auth_v1alpha1_authstack.yaml"} {
		for _, obj := range readObjects(t, filepath.Join(repoRoot, "config", "samples", f)) {
			obj.SetNamespace(ns)
			err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
				_, err := a.apply(ctx, obj)
				if err != nil && (apierrors.IsNotFound(err) || meta.IsNoMatchError(err)) {
					return false, nil
				}
				return err == nil, err
			})
			if err != nil {
				t.Fatalf("applying sample %s: %v", describe(obj), err)
			}
		}
	}
}

// TestInstallYAMLApplies is what `kubectl apply --server-side -f dist/install.yaml`
// or a GitOps sync does, against a real API server: every object must be
// accepted in file order, the CRD must become Established, the sample AuthStack
// must then be accepted, and a second apply must change nothing.
func TestInstallYAMLApplies(t *testing.T) {
	objs := readObjects(t, installPath)
	cfg := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := newApplier(t, cfg)

	for _, obj := range objs {
		if _, err := a.apply(ctx, obj); err != nil {
			t.Fatalf("applying %s: %v", describe(obj), err)
		}
	}

	waitEstablished(t, ctx, a, objs)

	// The sample and its Secrets are accepted by the installed CRD.
	t.Run("samples", func(t *testing.T) {
		const ns = "sample"
		if _, err := a.apply(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns},
		}}); err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
		var samples []*unstructured.Unstructured
		for _, f := range []string{"secrets.yaml", "auth_v1alpha1_authstack.yaml"} {
			samples = append(samples, readObjects(t, filepath.Join(repoRoot, "config", "samples", f))...)
		}
		kinds := map[string]int{}
		for _, obj := range samples {
			obj.SetNamespace(ns)
			kinds[obj.GetKind()]++
			// The CRD may take a moment after Established before it serves writes.
			var got *unstructured.Unstructured
			err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
				var err error
				got, err = a.apply(ctx, obj)
				if err != nil && (apierrors.IsNotFound(err) || meta.IsNoMatchError(err)) {
					return false, nil
				}
				return err == nil, err
			})
			if err != nil {
				t.Fatalf("applying sample %s: %v", describe(obj), err)
			}
			if got.GetKind() == "AuthStack" {
				if v, _, _ := unstructured.NestedString(got.Object, "spec", "authServer", "frontendURL"); v == "" {
					t.Errorf("sample AuthStack came back without spec.authServer.frontendURL: %v", got.Object["spec"])
				}
			}
		}
		if kinds["AuthStack"] != 1 || kinds["Secret"] < 3 {
			t.Errorf("samples hold %v; want one AuthStack and the Secrets it references (database, redis, smtp)", kinds)
		}
		// Every Secret the sample references is in the samples, with the key it names.
		as := find(samples, "AuthStack", "example")
		if as == nil {
			t.Fatalf("no AuthStack named example in the samples")
		}
		for _, ref := range [][]string{
			{"database", "urlSecretRef"}, {"redis", "urlSecretRef"}, {"smtp", "passwordSecretRef"}, {"pepper", "secretRef"},
		} {
			r, ok, _ := unstructured.NestedStringMap(as.Object, append([]string{"spec"}, ref...)...)
			if !ok {
				continue
			}
			s := find(samples, "Secret", r["name"])
			if s == nil {
				t.Errorf("the sample references Secret %q (spec.%s), which config/samples does not hold", r["name"], strings.Join(ref, "."))
				continue
			}
			if _, ok, _ := unstructured.NestedString(s.Object, "stringData", r["key"]); !ok {
				t.Errorf("sample Secret %q has no key %q (spec.%s)", r["name"], r["key"], strings.Join(ref, "."))
			}
		}
	})

	// A second apply of the same file is a no-op: nothing fights a GitOps tool.
	// (Read each object first: the API server itself may have written status since.)
	t.Run("reapply is a no-op", func(t *testing.T) {
		for _, obj := range objs {
			ri, err := a.resource(obj)
			if err != nil {
				t.Fatal(err)
			}
			before, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatalf("reading %s: %v", describe(obj), err)
			}
			got, err := a.apply(ctx, obj)
			if err != nil {
				t.Fatalf("re-applying %s: %v", describe(obj), err)
			}
			if got.GetResourceVersion() != before.GetResourceVersion() {
				t.Errorf("re-applying %s changed it (resourceVersion %s -> %s)",
					describe(obj), before.GetResourceVersion(), got.GetResourceVersion())
			}
		}
	})

	t.Run("operator service account permissions", func(t *testing.T) {
		checkPermissions(t, ctx, cfg)
	})

	t.Run("operator reconciles the sample as its service account", func(t *testing.T) {
		runOperatorAsServiceAccount(t, ctx, cfg, "sample", "example", nil)
	})
}

// runOperatorAsServiceAccount runs the real reconciler, wired as cmd/manager
// wires it (leader election and the cache options included), with every request
// impersonating the operator's service account: only the installed RBAC lets it
// work. The sample AuthStack must then get its children, its generated pepper and
// a status. watch is --watch-namespace (nil: all namespaces).
func runOperatorAsServiceAccount(t *testing.T, ctx context.Context, cfg *rest.Config, ns, name string, watch []string) {
	metricsAddr := freeAddr(t)
	sa := rest.CopyConfig(cfg)
	sa.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + operatorNS + ":" + operatorSA,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNS, "system:authenticated"},
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(sa, ctrl.Options{
		Scheme: scheme,
		// Secure metrics as config/default serves them: the TokenReviews and
		// SubjectAccessReviews go out as the service account too.
		Metrics: metricsserver.Options{
			BindAddress:    metricsAddr,
			SecureServing:  true,
			FilterProvider: filters.WithAuthenticationAndAuthorization,
			CertDir:        t.TempDir(),
		},
		HealthProbeBindAddress:  "0",
		Cache:                   controllers.CacheOptions(watch),
		LeaderElection:          true,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: operatorNS,
		// A missing list/watch permission shows as a cache that never syncs: fail fast.
		Controller: ctrlconfig.Controller{CacheSyncTimeout: 20 * time.Second, SkipNameValidation: ptr(true)},
	})
	if err != nil {
		t.Fatalf("creating the manager: %v", err)
	}
	if err := (&controllers.AuthStackReconciler{
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		Scheme:          mgr.GetScheme(),
		Recorder:        mgr.GetEventRecorder("authstack-operator"),
		AuthServerImage: "ghcr.io/leanauth/authserver:test",
	}).SetupWithManager(mgr); err != nil {
		t.Fatalf("setting up the controller: %v", err)
	}
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("the manager stopped with: %v", err)
		}
	}()

	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("creating the admin client: %v", err)
	}
	waitReconciled := func(name string, wantDeployments, wantStatefulSets, wantCronJobs int) {
		t.Helper()
		var last string
		err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 45*time.Second, true, func(ctx context.Context) (bool, error) {
			select {
			case err := <-done:
				done <- err
				return false, fmt.Errorf("the manager stopped early: %v", err)
			default:
			}
			var stack authv1alpha1.AuthStack
			if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &stack); err != nil {
				return false, err
			}
			for _, c := range stack.Status.Conditions {
				if c.Reason == authv1alpha1.ReasonApplyFailed {
					return false, fmt.Errorf("condition %s: %s: %s", c.Type, c.Reason, c.Message)
				}
			}
			var deps appsv1.DeploymentList
			if err := admin.List(ctx, &deps, client.InNamespace(ns)); err != nil {
				return false, err
			}
			var sets appsv1.StatefulSetList
			if err := admin.List(ctx, &sets, client.InNamespace(ns)); err != nil {
				return false, err
			}
			var crons batchv1.CronJobList
			if err := admin.List(ctx, &crons, client.InNamespace(ns)); err != nil {
				return false, err
			}
			ownedDeps, ownedSets, ownedCrons := 0, 0, 0
			for _, c := range crons.Items {
				if metav1.IsControlledBy(&c, &stack) {
					ownedCrons++
				}
			}
			for _, d := range deps.Items {
				if metav1.IsControlledBy(&d, &stack) {
					ownedDeps++
				}
			}
			for _, s := range sets.Items {
				if metav1.IsControlledBy(&s, &stack) {
					ownedSets++
				}
			}
			var pepper corev1.Secret
			pepperErr := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-pepper"}, &pepper)
			last = fmt.Sprintf("observedGeneration %d of %d, %d owned Deployments, %d owned StatefulSets, %d owned CronJobs, pepper Secret: %v, conditions %v",
				stack.Status.ObservedGeneration, stack.Generation, ownedDeps, ownedSets, ownedCrons, pepperErr, stack.Status.Conditions)
			return stack.Status.ObservedGeneration == stack.Generation && ownedDeps >= wantDeployments &&
				ownedSets >= wantStatefulSets && ownedCrons >= wantCronJobs && pepperErr == nil && len(stack.Status.Conditions) > 0, nil
		})
		if err != nil {
			t.Fatalf("the operator, as its service account, did not reconcile %s/%s: %v; last seen: %s", ns, name, err, last)
		}
	}
	// The sample: external PostgreSQL and Redis, pgbouncer, Ingress, NetworkPolicies.
	waitReconciled(name, 2, 0, 0)

	// A stack with the managed PostgreSQL and Redis and backups exercises the
	// StatefulSet and CronJob side.
	backupSecrets := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backup-pgp"},
			StringData: map[string]string{"public.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n(test)\n-----END PGP PUBLIC KEY BLOCK-----\n"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backup-s3"},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}},
	}
	for _, o := range backupSecrets {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating Secret %s: %v", o.GetName(), err)
		}
	}
	managed := &authv1alpha1.AuthStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "managed"},
		Spec: authv1alpha1.AuthStackSpec{
			AuthServer: authv1alpha1.AuthServerSpec{FrontendURL: "https://app.example.com"},
			Database:   authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}},
			SMTP:       authv1alpha1.SMTPSpec{Host: "smtp.example.com"},
			Backup: &authv1alpha1.BackupSpec{
				Destination: authv1alpha1.BackupDestination{S3: authv1alpha1.S3Destination{
					Bucket: "auth-backups", Region: "eu-west-1",
					CredentialsSecretRef: &authv1alpha1.SecretNameRef{Name: "backup-s3"},
				}},
				Encryption: authv1alpha1.BackupEncryption{PublicKeySecretRef: authv1alpha1.SecretKeyRef{Name: "backup-pgp", Key: "public.asc"}},
			},
		},
	}
	if err := admin.Create(ctx, managed); err != nil {
		t.Fatalf("creating the managed AuthStack: %v", err)
	}
	waitReconciled("managed", 2, 2, 1)

	// It took the leader election Lease in its own namespace.
	var lease coordinationv1.Lease
	if err := admin.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: leaderElectionID}, &lease); err != nil {
		t.Errorf("no leader election Lease %s/%s: %v", operatorNS, leaderElectionID, err)
	}

	checkSecureMetrics(t, ctx, cfg, admin, "https://"+metricsAddr+"/metrics")
}

// checkSecureMetrics scrapes the operator's HTTPS metrics: a service account
// bound to the installed authstack-metrics-reader ClusterRole gets them, one
// without the binding is forbidden, and no token is unauthorized.
func checkSecureMetrics(t *testing.T, ctx context.Context, cfg *rest.Config, admin client.Client, url string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("creating the clientset: %v", err)
	}
	const ns = "monitoring"
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prometheus"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stranger"}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "prometheus-authstack-metrics"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "authstack-metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}},
		},
	}
	for _, o := range objs {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	token := func(sa string) string {
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("requesting a token for %s/%s: %v", ns, sa, err)
		}
		return tr.Status.Token
	}
	// The serving certificate is self-signed (no cert-manager here).
	httpClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed test certificate
	}}
	scrape := func(bearer string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	var code int
	var body string
	// The RBAC authorizer may need a moment to see the new binding.
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 15*time.Second, true, func(context.Context) (bool, error) {
		code, body = scrape(token("prometheus"))
		return code == http.StatusOK, nil
	})
	if err != nil {
		t.Errorf("scraping with the metrics-reader service account: %d %s", code, body)
	} else if !strings.Contains(body, "controller_runtime_reconcile_total") {
		t.Errorf("the metrics lack controller_runtime_reconcile_total")
	}
	if code, _ := scrape(token("stranger")); code != http.StatusForbidden {
		t.Errorf("a service account without the metrics-reader role got %d, want 403", code)
	}
	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("a scrape without a token got %d, want 401", code)
	}
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

func ptr[T any](v T) *T { return &v }

// operatorCan asks the API server's RBAC authorizer whether the operator's
// service account may do attr.
func operatorCan(t *testing.T, ctx context.Context, cs kubernetes.Interface, attr authorizationv1.ResourceAttributes) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:" + operatorNS + ":" + operatorSA,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNS, "system:authenticated"},
		ResourceAttributes: &attr,
	}}
	got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("asking the authorizer: %v", err)
	}
	return got.Status.Allowed
}

// checkPermissions asks the API server's RBAC authorizer what the operator's
// service account may do, with the installed roles and bindings.
func checkPermissions(t *testing.T, ctx context.Context, cfg *rest.Config) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("creating the clientset: %v", err)
	}
	user := "system:serviceaccount:" + operatorNS + ":" + operatorSA
	can := func(attr authorizationv1.ResourceAttributes) bool { return operatorCan(t, ctx, cs, attr) }
	type perm struct {
		verb, group, resource, sub, ns string
	}
	str := func(p perm) string {
		r := p.resource
		if p.group != "" {
			r += "." + p.group
		}
		if p.sub != "" {
			r += "/" + p.sub
		}
		if p.ns != "" {
			return p.verb + " " + r + " in " + p.ns
		}
		return p.verb + " " + r + " cluster-wide"
	}
	attr := func(p perm) authorizationv1.ResourceAttributes {
		return authorizationv1.ResourceAttributes{Verb: p.verb, Group: p.group, Resource: p.resource, Subresource: p.sub, Namespace: p.ns}
	}
	mustAllow := []perm{
		// watching AuthStacks everywhere (or in the --watch-namespace list)
		{"list", "auth.leanauth.dev", "authstacks", "", ""},
		{"watch", "auth.leanauth.dev", "authstacks", "", ""},
		{"get", "auth.leanauth.dev", "authstacks", "", "team-a"},
		// the children it applies
		{"patch", "apps", "deployments", "", "team-a"},
		{"list", "apps", "deployments", "", ""},
		{"patch", "", "services", "", "team-a"},
		{"create", "", "secrets", "", "team-a"},
		{"get", "", "secrets", "", "team-a"},
		// leader election in its own namespace
		{"get", "coordination.k8s.io", "leases", "", operatorNS},
		{"create", "coordination.k8s.io", "leases", "", operatorNS},
		{"update", "coordination.k8s.io", "leases", "", operatorNS},
		// secure metrics
		{"create", "authentication.k8s.io", "tokenreviews", "", ""},
		{"create", "authorization.k8s.io", "subjectaccessreviews", "", ""},
	}
	for _, p := range mustAllow {
		if !can(attr(p)) {
			t.Errorf("the operator (%s) may not %s", user, str(p))
		}
	}
	// Status is written with update or with a patch (server-side apply).
	if !can(attr(perm{"update", "auth.leanauth.dev", "authstacks", "status", "team-a"})) &&
		!can(attr(perm{"patch", "auth.leanauth.dev", "authstacks", "status", "team-a"})) {
		t.Errorf("the operator may neither update nor patch authstacks/status")
	}
	// Events go through the core or the events.k8s.io API, depending on the recorder.
	if !can(attr(perm{"create", "", "events", "", "team-a"})) &&
		!can(attr(perm{"create", "events.k8s.io", "events", "", "team-a"})) {
		t.Errorf("the operator may not create events")
	}
	// Least privilege: nothing that would let it escalate or destroy the cluster.
	mustDeny := []perm{
		{"delete", "", "namespaces", "", ""},
		{"create", "rbac.authorization.k8s.io", "clusterroles", "", ""},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "", "team-a"},
		{"update", "apiextensions.k8s.io", "customresourcedefinitions", "", ""},
		{"create", "", "pods", "exec", "team-a"},
		{"update", "coordination.k8s.io", "leases", "", "kube-system"},
		{"delete", "", "nodes", "", ""},
	}
	for _, p := range mustDeny {
		if can(attr(p)) {
			t.Errorf("the operator (%s) may %s; it should not", user, str(p))
		}
	}
}

// TestInstallYAMLContents checks what dist/install.yaml holds, without a server.
func TestInstallYAMLContents(t *testing.T) {
	objs := readObjects(t, installPath)

	t.Run("CRD is current", func(t *testing.T) {
		base := readObjects(t, filepath.Join(repoRoot, "config", "crd", "bases", "auth.leanauth.dev_authstacks.yaml"))
		got := find(objs, "CustomResourceDefinition", crdName)
		if got == nil {
			t.Fatalf("dist/install.yaml has no CRD %s", crdName)
		}
		gotCRD := convert[apiextensionsv1.CustomResourceDefinition](t, got)
		baseCRD := convert[apiextensionsv1.CustomResourceDefinition](t, base[0])
		if !reflect.DeepEqual(gotCRD.Spec, baseCRD.Spec) {
			t.Errorf("the CRD in dist/install.yaml differs from config/crd/bases: run `make build-installer` and commit dist/install.yaml")
		}
	})

	t.Run("manager ClusterRole is current", func(t *testing.T) {
		base := readObjects(t, filepath.Join(repoRoot, "config", "rbac", "manager", "role.yaml"))
		got := find(objs, "ClusterRole", "authstack-manager-role")
		if got == nil {
			t.Fatalf("dist/install.yaml has no ClusterRole authstack-manager-role")
		}
		if !reflect.DeepEqual(got.Object["rules"], base[0].Object["rules"]) {
			t.Errorf("the manager ClusterRole in dist/install.yaml differs from config/rbac/manager/role.yaml: run `make build-installer` and commit dist/install.yaml")
		}
	})

	t.Run("namespaced objects live in the operator namespace", func(t *testing.T) {
		ns := find(objs, "Namespace", operatorNS)
		if ns == nil {
			t.Fatalf("no Namespace %s", operatorNS)
		}
		if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("namespace %s enforces Pod Security %q, want restricted", operatorNS, got)
		}
		for _, o := range objs {
			switch o.GetKind() {
			case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding":
				if o.GetNamespace() != "" {
					t.Errorf("cluster-scoped %s has namespace %q", describe(o), o.GetNamespace())
				}
			default:
				if o.GetNamespace() != operatorNS {
					t.Errorf("%s is not in %s", describe(o), operatorNS)
				}
			}
		}
	})

	t.Run("bindings point at installed roles and the operator's service account", func(t *testing.T) {
		if find(objs, "ServiceAccount", operatorSA) == nil {
			t.Fatalf("no ServiceAccount %s", operatorSA)
		}
		bindings := 0
		for _, o := range objs {
			if o.GetKind() != "ClusterRoleBinding" && o.GetKind() != "RoleBinding" {
				continue
			}
			bindings++
			roleKind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
			roleName, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			if find(objs, roleKind, roleName) == nil {
				t.Errorf("%s refers to %s %s, which is not installed", describe(o), roleKind, roleName)
			}
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, s := range subjects {
				sm, _ := s.(map[string]any)
				if sm["kind"] == "ServiceAccount" && (sm["name"] != operatorSA || sm["namespace"] != operatorNS) {
					t.Errorf("%s binds ServiceAccount %v/%v, want %s/%s", describe(o), sm["namespace"], sm["name"], operatorNS, operatorSA)
				}
			}
		}
		if bindings < 3 {
			t.Errorf("found %d bindings; want the manager, leader-election and metrics-auth bindings", bindings)
		}
		if find(objs, "ClusterRole", "authstack-manager-role") == nil {
			t.Errorf("no ClusterRole authstack-manager-role (config/rbac/manager/role.yaml from controller-gen)")
		}
	})

	t.Run("operator Deployment", func(t *testing.T) {
		u := find(objs, "Deployment", operatorDeploy)
		if u == nil {
			t.Fatalf("no Deployment %s", operatorDeploy)
		}
		d := convert[appsv1.Deployment](t, u)
		pod := d.Spec.Template
		if pod.Spec.ServiceAccountName != operatorSA {
			t.Errorf("serviceAccountName = %q, want %s", pod.Spec.ServiceAccountName, operatorSA)
		}
		if len(pod.Spec.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
		}
		c := pod.Spec.Containers[0]
		if c.Image == "" || strings.HasPrefix(c.Image, "controller") {
			t.Errorf("image = %q: the kustomize image `controller` was not replaced", c.Image)
		}
		for _, arg := range []string{"--leader-elect", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8443", "--metrics-secure"} {
			if !slices.Contains(c.Args, arg) {
				t.Errorf("args %q lack %s", c.Args, arg)
			}
		}
		for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
			if p == nil || p.HTTPGet == nil {
				t.Errorf("no HTTP %s probe", name)
				continue
			}
			if p.HTTPGet.Path != want || (p.HTTPGet.Port.IntValue() != 8081 && p.HTTPGet.Port.String() != "health") {
				t.Errorf("%s probe = %s on %s, want %s on 8081", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), want)
			}
		}
		if port := containerPort(c, "health"); port != 8081 {
			t.Errorf("the health port is %d, want 8081", port)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("resources %v: want cpu and memory requests and a memory limit", c.Resources)
		}
		if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 1001 {
			t.Errorf("pod runAsUser is not 1001: %+v", pod.Spec.SecurityContext)
		}
		if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("the root filesystem is not read-only: %+v", c.SecurityContext)
		}

		// The Pod Security "restricted" level, as the admission plugin evaluates it.
		evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
		if err != nil {
			t.Fatalf("creating the Pod Security evaluator: %v", err)
		}
		results := evaluator.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()},
			&pod.ObjectMeta, &pod.Spec)
		if agg := policy.AggregateCheckResults(results); !agg.Allowed {
			t.Errorf("the operator pod violates Pod Security restricted: %s: %s", agg.ForbiddenReason(), agg.ForbiddenDetail())
		}
	})

	t.Run("metrics Service selects the operator pod", func(t *testing.T) {
		d := convert[appsv1.Deployment](t, find(objs, "Deployment", operatorDeploy))
		var svc *corev1.Service
		for _, o := range objs {
			if o.GetKind() == "Service" {
				svc = convert[corev1.Service](t, o)
			}
		}
		if svc == nil {
			t.Fatalf("no metrics Service")
		}
		for k, v := range svc.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("Service %s selects %s=%s, which the operator pod lacks", svc.Name, k, v)
			}
		}
		if len(svc.Spec.Selector) == 0 {
			t.Errorf("Service %s selects nothing", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.String() != "https-metrics" || containerPort(d.Spec.Template.Spec.Containers[0], "https-metrics") != 8443 {
				t.Errorf("Service port %s targets %s; want the container port https-metrics (8443)", p.Name, p.TargetPort.String())
			}
		}
	})

	t.Run("leader election ID matches the Lease the role allows", func(t *testing.T) {
		// The Lease name is the --leader-election-id default; the Role allows leases in the namespace.
		role := find(objs, "Role", "authstack-leader-election-role")
		if role == nil {
			t.Fatalf("no Role authstack-leader-election-role")
		}
		rules := convert[struct {
			Rules []struct {
				APIGroups []string `json:"apiGroups"`
				Resources []string `json:"resources"`
			} `json:"rules"`
		}](t, role).Rules
		ok := false
		for _, r := range rules {
			if slices.Contains(r.APIGroups, "coordination.k8s.io") && slices.Contains(r.Resources, "leases") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the leader election Role does not cover leases (Lease %s)", leaderElectionID)
		}
	})
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// TestSamplesDecode keeps the samples strict YAML with known fields only.
func TestSamplesDecode(t *testing.T) {
	for _, f := range []string{"secrets.yaml", "auth_v1alpha1_authstack.yaml"} {
		for _, obj := range readObjects(t, filepath.Join(repoRoot, "config", "samples", f)) {
			if obj.GetName() == "" || obj.GetKind() == "" {
				t.Errorf("%s: object without kind or name: %v", f, obj.Object)
			}
			if obj.GetNamespace() != "" {
				t.Errorf("%s: %s sets a namespace; samples go into the namespace you apply them to", f, describe(obj))
			}
			if obj.GetKind() == "Secret" {
				b, _ := yaml.Marshal(obj.Object["stringData"])
				if !strings.Contains(string(b), "CHANGE-ME") {
					t.Errorf("%s: Secret %s holds no CHANGE-ME placeholder: samples must not carry usable credentials", f, obj.GetName())
				}
			}
		}
	}
}
