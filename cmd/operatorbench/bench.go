package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
	"github.com/leanauth/authstack/internal/procstat"
)

// User agents, to tell the clients apart in the audit log. The operator's is its
// binary's name (client-go's default): "manager/...".
const (
	agentBench    = "operatorbench"     // setup and polling
	agentRaw      = "operatorbench-raw" // the plain client
	agentOperator = "manager/"
	rawOwner      = "operatorbench-raw" // the plain client's field manager
)

type bench struct {
	o          options
	kubeconfig string
	scheme     *runtime.Scheme
	c          client.Client // setup and polling
	raw        client.Client // the plain client
}

func newBench(kubeconfig string, o options) (*bench, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	cfg.QPS = -1 // no client-side rate limit, like the operator's (controller-runtime's default)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	b := &bench{o: o, kubeconfig: kubeconfig, scheme: scheme}
	for agent, c := range map[string]*client.Client{agentBench: &b.c, agentRaw: &b.raw} {
		cc := *cfg
		cc.UserAgent = agent
		if *c, err = client.New(&cc, client.Options{Scheme: scheme}); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *bench) namespace(prefix string, i int) string {
	return fmt.Sprintf("%s-%02d", prefix, i%b.o.namespaces)
}

// installCRD applies the CRDs in dir and waits until they are served.
func (b *bench) installCRD(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRD in %s", dir)
	}
	var names []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &u.Object); err != nil {
			return fmt.Errorf("reading %s: %w", f, err)
		}
		if err := b.c.Patch(ctx, u, client.Apply, client.FieldOwner(agentBench), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured apply
			return fmt.Errorf("applying %s: %w", f, err)
		}
		names = append(names, u.GetName())
	}
	return poll(ctx, 60*time.Second, func() (bool, error) {
		for _, n := range names {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("apiextensions.k8s.io/v1")
			u.SetKind("CustomResourceDefinition")
			if err := b.c.Get(ctx, types.NamespacedName{Name: n}, u); err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			established := false
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					established = true
				}
			}
			if !established {
				return false, nil
			}
		}
		// The client's REST mapper learns the new kind on its first miss.
		err := b.c.List(ctx, &authv1alpha1.AuthStackList{}, client.Limit(1))
		return err == nil, nil
	})
}

// addNodes adds fake nodes like hack/kwok/node.yaml's (110 pods, 32 CPUs each) until
// every pod of both phases fits: one node is the cluster's own.
func (b *bench) addNodes(ctx context.Context, nodeYAML string, podsPerStack int) error {
	raw, err := os.ReadFile(nodeYAML)
	if err != nil {
		return err
	}
	var tmpl corev1.Node
	if err := yaml.UnmarshalStrict(raw, &tmpl); err != nil {
		return fmt.Errorf("reading %s: %w", nodeYAML, err)
	}
	perNode := tmpl.Status.Allocatable.Pods().Value() - 10 // room for anything else
	nodes := int((int64(b.o.stacks*podsPerStack) + perNode - 1) / perNode)
	var names []string
	for i := 1; i < nodes; i++ {
		n := tmpl.DeepCopy()
		n.Name = fmt.Sprintf("kwok-bench-%d", i)
		n.Labels["kubernetes.io/hostname"] = n.Name
		if err := b.c.Create(ctx, n); err != nil {
			return fmt.Errorf("creating node %s: %w", n.Name, err)
		}
		names = append(names, n.Name)
	}
	return poll(ctx, 2*time.Minute, func() (bool, error) {
		for _, name := range names {
			var n corev1.Node
			if err := b.c.Get(ctx, types.NamespacedName{Name: name}, &n); err != nil {
				return false, nil
			}
			ready := false
			for _, c := range n.Status.Conditions {
				ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
			}
			if !ready {
				return false, nil
			}
		}
		return true, nil
	})
}

// defaultedSpec is benchSpec as the API server stores it (CRD defaults applied):
// what the operator reads, so what the plain client must render from.
func (b *bench) defaultedSpec(ctx context.Context) (authv1alpha1.AuthStackSpec, error) {
	s := benchStack("default", 0, benchSpec())
	if err := b.c.Create(ctx, s, client.DryRunAll); err != nil {
		return authv1alpha1.AuthStackSpec{}, fmt.Errorf("dry-run create of the bench AuthStack: %w", err)
	}
	return s.Spec, nil
}

// setupNamespaces creates the namespaces prefix-00.. with the user's Secrets.
func (b *bench) setupNamespaces(ctx context.Context, prefix string) error {
	for i := 0; i < b.o.namespaces; i++ {
		ns := b.namespace(prefix, i)
		if err := b.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
		for _, s := range userSecrets(ns) {
			if err := b.c.Create(ctx, s); err != nil {
				return fmt.Errorf("creating Secret %s/%s: %w", ns, s.Name, err)
			}
		}
	}
	// Namespaces get their default ServiceAccount from the controller-manager; pods
	// wait for it. Wait here, so neither side's clock includes it.
	return poll(ctx, 2*time.Minute, func() (bool, error) {
		for i := 0; i < b.o.namespaces; i++ {
			err := b.c.Get(ctx, types.NamespacedName{Namespace: b.namespace(prefix, i), Name: "default"}, &corev1.ServiceAccount{})
			if err != nil {
				return false, nil
			}
		}
		return true, nil
	})
}

// deleteNamespaces deletes prefix-00.. and waits until they are gone.
func (b *bench) deleteNamespaces(ctx context.Context, prefix string) error {
	for i := 0; i < b.o.namespaces; i++ {
		err := b.c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.namespace(prefix, i)}})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return poll(ctx, 5*time.Minute, func() (bool, error) {
		for i := 0; i < b.o.namespaces; i++ {
			err := b.c.Get(ctx, types.NamespacedName{Name: b.namespace(prefix, i)}, &corev1.Namespace{})
			if !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	})
}

// rawPhase is the plain client: render each stack with the operator's builders, apply
// every object with server-side apply, one request at a time (like the operator, which
// reconciles one stack at a time), then wait until every Deployment is available.
func (b *bench) rawPhase(ctx context.Context, spec authv1alpha1.AuthStackSpec, res *results) error {
	logf("plain client: %d stacks in %d namespaces", b.o.stacks, b.o.namespaces)
	if err := b.setupNamespaces(ctx, "raw"); err != nil {
		return err
	}
	deployments := 0
	res.rawStart = time.Now()
	for i := 0; i < b.o.stacks; i++ {
		pepper, err := resources.NewPepper()
		if err != nil {
			return err
		}
		objs, err := renderStack(benchStack(b.namespace("raw", i), i, spec), pepper)
		if err != nil {
			return err
		}
		res.objectsPerStack = len(objs)
		for _, obj := range objs {
			if _, ok := obj.(*appsv1.Deployment); ok {
				deployments++
			}
			u, err := applyBody(b.scheme, obj)
			if err != nil {
				return err
			}
			if err := b.raw.Patch(ctx, u, client.Apply, client.FieldOwner(rawOwner), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured apply
				return fmt.Errorf("applying %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
			}
		}
	}
	res.rawApplied = time.Now()
	logf("plain client: applied %d objects in %s; waiting for %d Deployments", b.o.stacks*res.objectsPerStack,
		res.rawApplied.Sub(res.rawStart).Round(time.Millisecond), deployments)
	ready := 0
	err := poll(ctx, 10*time.Minute, func() (bool, error) {
		var list appsv1.DeploymentList
		if err := b.c.List(ctx, &list, client.MatchingLabels{resources.LabelPartOf: "authstack"}); err != nil {
			return false, nil
		}
		ready = 0
		for i := range list.Items {
			if strings.HasPrefix(list.Items[i].Namespace, "raw-") && deploymentReady(&list.Items[i]) {
				ready++
			}
		}
		return ready >= deployments, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the Deployments (%d of %d available): %w", ready, deployments, err)
	}
	res.rawEnd = time.Now()
	logf("plain client: all Deployments available after %s", res.rawEnd.Sub(res.rawStart).Round(time.Millisecond))
	logf("deleting the plain client's namespaces")
	return b.deleteNamespaces(ctx, "raw")
}

// deploymentReady is what the operator's Ready waits for: the Deployment controller
// saw the latest spec, every replica is updated and ready, and it reports Available.
func deploymentReady(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas < want ||
		d.Status.ReadyReplicas < want || d.Status.Replicas != d.Status.UpdatedReplicas {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// applyBody turns a typed object into a server-side apply body: its kind set, no
// status, no null fields (an unset creationTimestamp would read as "remove it").
func applyBody(scheme *runtime.Scheme, obj client.Object) (*unstructured.Unstructured, error) {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// createNoise creates the unrelated Secrets and ConfigMaps, spread over the namespaces.
func (b *bench) createNoise(ctx context.Context, prefix string) error {
	jobs := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				data := make([]byte, b.o.noiseBytes/2)
				_, _ = rand.Read(data)
				meta := metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%04d", i), Namespace: b.namespace(prefix, i)}
				var obj client.Object
				if i%2 == 0 {
					obj = &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{"data": []byte(hex.EncodeToString(data))}}
				} else {
					obj = &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"data": hex.EncodeToString(data)}}
				}
				if err := b.c.Create(ctx, obj); err != nil {
					errs <- fmt.Errorf("creating %s/%s: %w", meta.Namespace, meta.Name, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := 0; i < b.o.noise; i++ {
		select {
		case jobs <- i:
		case err = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err = <-errs:
		return err
	default:
		return nil
	}
}

// operatorPhase starts the operator, creates the AuthStacks and waits until all are
// Ready, then watches it at rest.
func (b *bench) operatorPhase(ctx context.Context, spec authv1alpha1.AuthStackSpec, bin, logPath string, metricsPort int, res *results) error {
	logf("operator: %d unrelated Secrets and ConfigMaps, then %d AuthStacks", b.o.noise, b.o.stacks)
	if err := b.setupNamespaces(ctx, "op"); err != nil {
		return err
	}
	if err := b.createNoise(ctx, "op"); err != nil {
		return err
	}
	op, err := startOperator(bin, b.kubeconfig, logPath, metricsPort)
	if err != nil {
		return err
	}
	defer op.stop()
	// Started: the controller registers its reconcile counter once its caches synced.
	var lastErr error
	if err := poll(ctx, 2*time.Minute, func() (bool, error) {
		if op.exited() {
			return false, fmt.Errorf("the operator exited (log: %s)", logPath)
		}
		_, lastErr = op.reconciles(ctx)
		return lastErr == nil, nil
	}); err != nil {
		return fmt.Errorf("waiting for the operator to start (%v): %w", lastErr, err)
	}
	cpu0 := cpuSeconds(op.pid())
	rec0, _ := op.reconciles(ctx)

	res.opStart = time.Now()
	for i := 0; i < b.o.stacks; i++ {
		if err := b.c.Create(ctx, benchStack(b.namespace("op", i), i, spec)); err != nil {
			return fmt.Errorf("creating AuthStack %d: %w", i, err)
		}
	}
	logf("operator: created %d AuthStacks in %s; waiting for Ready", b.o.stacks, time.Since(res.opStart).Round(time.Millisecond))
	notReady, ready := "", 0
	err = poll(ctx, 10*time.Minute, func() (bool, error) {
		if op.exited() {
			return false, fmt.Errorf("the operator exited (log: %s)", logPath)
		}
		var list authv1alpha1.AuthStackList
		if err := b.c.List(ctx, &list); err != nil {
			return false, nil
		}
		ready = 0
		for i := range list.Items {
			if stackReady(&list.Items[i]) {
				ready++
			} else {
				notReady = list.Items[i].Namespace + "/" + list.Items[i].Name
			}
		}
		return ready >= b.o.stacks, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for Ready (%d of %d Ready; not Ready: %s, ...): %w", ready, b.o.stacks, notReady, err)
	}
	res.opEnd = time.Now()
	res.cpuConverge = cpuSeconds(op.pid())
	res.cpuConverge -= cpu0
	rec1, _ := op.reconciles(ctx)
	res.reconConverge = rec1 - rec0
	logf("operator: all AuthStacks Ready after %s; %s at rest", res.opEnd.Sub(res.opStart).Round(time.Millisecond), b.o.quiet)

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(res.opEnd.Add(b.o.quiet))):
	}
	res.quietEnd = time.Now()
	rec2, err := op.reconciles(ctx)
	if err != nil {
		return err
	}
	res.reconQuiet = rec2 - rec1

	// One no-op reconcile per stack: an annotation changes nothing the operator renders.
	logf("operator: touching every AuthStack once (an annotation) for no-op reconciles")
	res.touchStart = time.Now()
	for i := 0; i < b.o.stacks; i++ {
		s := &authv1alpha1.AuthStack{ObjectMeta: metav1.ObjectMeta{Namespace: b.namespace("op", i), Name: fmt.Sprintf("s%03d", i)}}
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"operatorbench/touched":%q}}}`, res.touchStart.Format(time.RFC3339Nano)))
		if err := b.c.Patch(ctx, s, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("touching AuthStack %s: %w", s.Name, err)
		}
	}
	// Done when every stack was reconciled and no reconcile ran for 5 s.
	last, stableSince := rec2, time.Now()
	err = poll(ctx, 5*time.Minute, func() (bool, error) {
		n, err := op.reconciles(ctx)
		if err != nil {
			return false, err
		}
		if n != last {
			last, stableSince = n, time.Now()
		}
		return n-rec2 >= float64(b.o.stacks) && time.Since(stableSince) > 5*time.Second, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the no-op reconciles: %w", err)
	}
	res.touchEnd = time.Now()
	res.reconTouch = last - rec2

	res.hwm, err = procstat.StatusKiB(op.pid(), "VmHWM")
	res.hwm *= 1024
	if err != nil {
		return err
	}
	res.rssEnd, _ = procstat.StatusKiB(op.pid(), "VmRSS")
	res.rssEnd *= 1024
	res.cpuTotal = cpuSeconds(op.pid())
	res.renderCheck, err = b.checkRendered(ctx, spec)
	return err
}

func stackReady(s *authv1alpha1.AuthStack) bool {
	c := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == s.Generation &&
		s.Status.ObservedGeneration == s.Generation
}

// checkRendered compares what the plain client rendered for stack 0 with the objects
// the operator's field manager applied in its namespace for that stack (kind and name,
// labelled app.kubernetes.io/instance=s000): a difference means renderStack no longer
// follows the reconciler, and the comparison in (a) is off.
func (b *bench) checkRendered(ctx context.Context, spec authv1alpha1.AuthStackSpec) (string, error) {
	stack := benchStack(b.namespace("op", 0), 0, spec)
	objs, err := renderStack(stack, make([]byte, resources.PepperBytes))
	if err != nil {
		return "", err
	}
	var want []string
	for _, o := range objs {
		gvk, err := apiutil.GVKForObject(o, b.scheme)
		if err != nil {
			return "", err
		}
		want = append(want, gvk.Kind+"/"+o.GetName())
	}
	var got []string
	for _, l := range []client.ObjectList{&corev1.SecretList{}, &corev1.ConfigMapList{}, &corev1.ServiceList{},
		&appsv1.DeploymentList{}, &appsv1.StatefulSetList{}, &batchv1.JobList{}, &policyv1.PodDisruptionBudgetList{},
		&networkingv1.NetworkPolicyList{}, &networkingv1.IngressList{}, &autoscalingv2.HorizontalPodAutoscalerList{}} {
		if err := b.c.List(ctx, l, client.InNamespace(stack.Namespace)); err != nil {
			return "", err
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return "", err
		}
		for _, it := range items {
			o := it.(client.Object)
			if !appliedBy(o, resources.FieldOwner) && o.GetName() != resources.PepperSecretName(stack) {
				continue
			}
			if o.GetLabels()[resources.LabelInstance] != stack.Name && o.GetName() != resources.PepperSecretName(stack) {
				continue
			}
			gvk, err := apiutil.GVKForObject(it, b.scheme)
			if err != nil {
				return "", err
			}
			got = append(got, gvk.Kind+"/"+o.GetName())
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(want, " ") != strings.Join(got, " ") {
		return fmt.Sprintf("MISMATCH: the plain client rendered %v, the operator applied %v", want, got), nil
	}
	return fmt.Sprintf("the plain client rendered the %d objects the operator applied for a stack", len(want)), nil
}

func appliedBy(o client.Object, manager string) bool {
	for _, mf := range o.GetManagedFields() {
		if mf.Manager == manager {
			return true
		}
	}
	return false
}

func poll(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// cpuSeconds is the user+system CPU time of pid so far (0 if unreadable).
func cpuSeconds(pid int) float64 {
	u, s, _ := procstat.CPU(pid)
	return u + s
}
