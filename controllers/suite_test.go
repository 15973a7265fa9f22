package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The reconcile tests run against a real kube-apiserver and etcd (envtest, binaries from
// hack/control-plane.sh). Each test works in its own namespace with its own manager, so
// tests run in parallel and a manager can be stopped and restarted inside one test.
var (
	restConfig *rest.Config
	k8s        client.Client
	testScheme = runtime.NewScheme()
)

const testImage = "ghcr.io/leanauth/authserver:test"

func TestMain(m *testing.M) {
	if err := clientgoscheme.AddToScheme(testScheme); err != nil {
		panic(err)
	}
	if err := authv1alpha1.AddToScheme(testScheme); err != nil {
		panic(err)
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest (KUBEBUILDER_ASSETS=%q; run `make test` or hack/control-plane.sh): %v\n", os.Getenv("KUBEBUILDER_ASSETS"), err)
		_ = env.Stop() // a failed CRD install leaves etcd and kube-apiserver running otherwise
		os.Exit(1)
	}
	restConfig = cfg
	k8s, err = client.New(cfg, client.Options{Scheme: testScheme})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
	}
	os.Exit(code)
}

func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// writeCounter counts the writes the reconciler sends to the API server.
type writeCounter struct {
	n    atomic.Int64
	mu   sync.Mutex
	last []string // the newest writes, "verb kind/name", for failure messages
}

func (w *writeCounter) count() int64 { return w.n.Load() }

func (w *writeCounter) add(verb string, obj any) {
	w.n.Add(1)
	desc := verb
	switch o := obj.(type) {
	case client.Object:
		desc += fmt.Sprintf(" %T %s", o, o.GetName())
	case interface{ GetName() *string }: // an apply configuration
		desc += fmt.Sprintf(" %T %s", o, ptr.Deref(o.GetName(), ""))
	default:
		desc += fmt.Sprintf(" %T", obj)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = append(w.last, desc)
	if len(w.last) > 10 {
		w.last = w.last[1:]
	}
}

// recent lists the newest writes (at most ten), oldest first.
func (w *writeCounter) recent() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.last, "; ")
}

// countingClient counts every create, update, patch and delete the reconciler sends,
// status writes included.
type countingClient struct {
	client.Client
	w *writeCounter
}

func (c countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.w.add("create", obj)
	return c.Client.Create(ctx, obj, opts...)
}

func (c countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.w.add("update", obj)
	return c.Client.Update(ctx, obj, opts...)
}

func (c countingClient) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.w.add("patch", obj)
	return c.Client.Patch(ctx, obj, p, opts...)
}

func (c countingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.w.add("apply", obj)
	return c.Client.Apply(ctx, obj, opts...)
}

func (c countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.w.add("delete", obj)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c countingClient) Status() client.SubResourceWriter {
	return countingStatus{SubResourceWriter: c.Client.Status(), w: c.w}
}

type countingStatus struct {
	client.SubResourceWriter
	w *writeCounter
}

func (c countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	c.w.add("status update", obj)
	return c.SubResourceWriter.Update(ctx, obj, opts...)
}

func (c countingStatus) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	c.w.add("status patch", obj)
	return c.SubResourceWriter.Patch(ctx, obj, p, opts...)
}

// operator is one running manager with the AuthStack controller, watching one namespace.
type operator struct {
	reconciler *AuthStackReconciler
	writes     *writeCounter
	stop       context.CancelFunc
	done       chan error
}

// startOperator starts a manager for namespace ns and stops it at the end of the test.
func startOperator(t *testing.T, ns string, opts ...func(*AuthStackReconciler)) *operator {
	t.Helper()
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 testScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions([]string{ns}), // as cmd/manager: only what the operator manages
		// Several managers run in one test binary; each registers the same controller name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("creating manager: %v", err)
	}
	w := &writeCounter{}
	r := &AuthStackReconciler{
		Client:          countingClient{Client: mgr.GetClient(), w: w},
		APIReader:       mgr.GetAPIReader(),
		Scheme:          mgr.GetScheme(),
		Recorder:        mgr.GetEventRecorder("authstack-operator"),
		AuthServerImage: testImage,
	}
	for _, o := range opts {
		o(r)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatalf("setting up the controller: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	op := &operator{reconciler: r, writes: w, stop: cancel, done: make(chan error, 1)}
	go func() { op.done <- mgr.Start(ctx) }()
	t.Cleanup(op.shutdown)
	// Tests call Reconcile directly too: only once the cache serves reads.
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the manager's cache did not sync")
	}
	return op
}

// shutdown stops the manager and waits for it; safe to call twice.
func (o *operator) shutdown() {
	o.stop()
	select {
	case <-o.done:
	case <-time.After(30 * time.Second):
	}
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ast-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// settle waits until a reconcile of the stack "auth" in ns sends no write: the
// starting point of every "a no-op reconcile writes nothing" assertion.
func settle(t *testing.T, op *operator, ns string) {
	t.Helper()
	eventually(t, "reconcile converges", func() error {
		before := op.writes.count()
		reconcileNow(t, op, ns)
		if d := op.writes.count() - before; d != 0 {
			return fmt.Errorf("%d writes: %s", d, op.writes.recent())
		}
		return nil
	})
}
