//go:build e2e

package e2e

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// create -> Ready with every child in place, owned by the stack, and the pods
// of the authserver, the pooler and the Redis StatefulSet Running (under kwok),
// the authserver at the HPA's minimum.
func TestCreateReadyEveryChildRunning(t *testing.T) {
	start := time.Now()
	ns := namespace(t, "e2e-create")
	userSecrets(t, ns)
	stack := fullStack(ns, "shop")
	if err := env.c.Create(ctx(t), stack); err != nil {
		t.Fatalf("creating the AuthStack: %v", err)
	}
	stack = waitReady(t, ns, "shop", 3*time.Minute)
	t.Logf("Ready after %s", time.Since(start).Round(time.Millisecond))

	want := map[string]client.Object{
		resources.AuthServerName(stack):             &appsv1.Deployment{},
		resources.PgBouncerName(stack):              &appsv1.Deployment{},
		resources.RedisName(stack):                  &appsv1.StatefulSet{},
		"svc/" + resources.AuthServerName(stack):    &corev1.Service{},
		"svc/" + resources.PgBouncerName(stack):     &corev1.Service{},
		"hpa/" + resources.AuthServerName(stack):    &autoscalingv2.HorizontalPodAutoscaler{},
		"pdb/" + resources.AuthServerName(stack):    &policyv1.PodDisruptionBudget{},
		"ing/" + resources.AuthServerName(stack):    &networkingv1.Ingress{},
		"netpol/" + resources.AuthServerName(stack): &networkingv1.NetworkPolicy{},
	}
	for key, obj := range want {
		name := key[strings.Index(key, "/")+1:]
		if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			t.Errorf("%s missing: %v", key, err)
			continue
		}
		owned := false
		for _, r := range obj.GetOwnerReferences() {
			owned = owned || (r.UID == stack.UID && ptr.Deref(r.Controller, false))
		}
		if !owned {
			t.Errorf("%s has no controller owner reference to the stack", key)
		}
	}
	ing := want["ing/"+resources.AuthServerName(stack)].(*networkingv1.Ingress)
	if len(ing.Spec.TLS) == 0 || ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt" {
		t.Errorf("Ingress without TLS or issuer annotation: tls %v annotations %v", ing.Spec.TLS, ing.Annotations)
	}

	// The pepper Secret exists and is not owned (it outlives the stack).
	pepper := &corev1.Secret{}
	if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: resources.PepperSecretName(stack)}, pepper); err != nil {
		t.Fatalf("pepper Secret: %v", err)
	}
	if len(pepper.OwnerReferences) != 0 {
		t.Errorf("the pepper Secret has owner references %v: it would be garbage-collected with the stack", pepper.OwnerReferences)
	}

	// Pods: the real controller-manager created them, the scheduler bound them to
	// the fake node, kwok turned them Running. The HPA (real controller) holds the
	// authserver at its minimum of 3.
	var running map[string]int
	var pods []corev1.Pod
	err := poll(2*time.Minute, func() (bool, error) {
		running, pods = podsByComponent(t, ns, stack.Name)
		return running[resources.ComponentAuthServer] >= 3 && running[resources.ComponentPgBouncer] >= 1 && running[resources.ComponentRedis] >= 1, nil
	})
	if err != nil {
		t.Fatalf("pods Running by component: %v (want authserver>=3, pgbouncer>=1, redis>=1); %d pods", running, len(pods))
	}
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "kwok-node-0" {
			t.Errorf("pod %s runs on %q, not the fake node", p.Name, p.Spec.NodeName)
		}
	}
	dep := want[resources.AuthServerName(stack)].(*appsv1.Deployment)
	if err := poll(time.Minute, func() (bool, error) {
		if err := env.c.Get(ctx(t), client.ObjectKeyFromObject(dep), dep); err != nil {
			return false, err
		}
		return ptr.Deref(dep.Spec.Replicas, 0) >= 3 && dep.Status.AvailableReplicas >= 3, nil
	}); err != nil {
		t.Fatalf("authserver Deployment not scaled to the HPA minimum: spec %v available %d", dep.Spec.Replicas, dep.Status.AvailableReplicas)
	}
	// The operator reports the Deployment's new status after its watch saw it.
	var ready int32
	if err := poll(time.Minute, func() (bool, error) {
		ready = getStack(t, ns, stack.Name).Status.AuthServer.ReadyReplicas
		return ready >= 3, nil
	}); err != nil {
		t.Errorf("status.authServer.readyReplicas = %d, want >= 3", ready)
	}
	t.Logf("children in place, pods Running: %v, after %s", running, time.Since(start).Round(time.Millisecond))
}

// GitOps: the AuthStack applied with server-side apply under another field
// manager, then re-applied unchanged 10 times: no generation bump, no child
// changes, and not a single write request from the operator.
func TestGitOpsReapplyUnchangedWritesNothing(t *testing.T) {
	ns := namespace(t, "e2e-gitops")
	userSecrets(t, ns)
	stack := fullStack(ns, "gitops")
	apply := func() {
		t.Helper()
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(stack)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		if err := env.c.Patch(ctx(t), u, client.Apply, client.FieldOwner("argocd-controller"), client.ForceOwnership); err != nil {
			t.Fatalf("server-side apply as argocd-controller: %v", err)
		}
	}
	apply()
	waitReady(t, ns, stack.Name, 3*time.Minute)
	// Let the pods settle (kwok, controller-manager) and the operator go quiet.
	var before map[string]child
	var beforeStack *authv1alpha1.AuthStack
	var w0 int
	err := poll(2*time.Minute, func() (bool, error) {
		s1, w1 := getStack(t, ns, stack.Name), mustWrites(t)
		c1 := children(t, ns, s1)
		time.Sleep(4 * time.Second)
		s2, w2 := getStack(t, ns, stack.Name), mustWrites(t)
		c2 := children(t, ns, s2)
		before, beforeStack, w0 = c2, s2, w2
		return w1 == w2 && s1.ResourceVersion == s2.ResourceVersion && sameChildren(c1, c2) == "", nil
	})
	if err != nil {
		t.Fatalf("the stack never settled: %v", err)
	}

	for i := 0; i < 10; i++ {
		apply()
		s := getStack(t, ns, stack.Name)
		if s.Generation != beforeStack.Generation {
			t.Fatalf("apply %d bumped the generation %d -> %d", i+1, beforeStack.Generation, s.Generation)
		}
	}
	time.Sleep(5 * time.Second) // time for any reconcile the applies triggered
	after := getStack(t, ns, stack.Name)
	if after.ResourceVersion != beforeStack.ResourceVersion {
		t.Errorf("the AuthStack changed (resourceVersion %s -> %s): status or spec written", beforeStack.ResourceVersion, after.ResourceVersion)
	}
	if diff := sameChildren(before, children(t, ns, after)); diff != "" {
		t.Errorf("children changed after unchanged applies:\n%s", diff)
	}
	if w := mustWrites(t); w != w0 {
		t.Errorf("the operator made %d write requests after 10 unchanged applies, want 0", w-w0)
	}
	// The operator never writes spec: its only field-manager entries on the AuthStack are on status.
	for _, mf := range after.ManagedFields {
		if mf.Manager == resources.FieldOwner && mf.Subresource != "status" {
			t.Errorf("the operator owns fields of the AuthStack outside status: %s %s %s", mf.Operation, mf.Subresource, mf.FieldsV1)
		}
		if mf.Manager == "argocd-controller" && mf.Subresource == "" && !strings.Contains(mf.FieldsV1.String(), "f:frontendURL") {
			t.Errorf("argocd-controller lost ownership of spec fields: %s", mf.FieldsV1)
		}
	}
	t.Logf("10 unchanged applies: generation %d, %d children unchanged, 0 operator writes", after.Generation, len(before))
}

func mustWrites(t *testing.T) int {
	t.Helper()
	w, err := env.op.writes()
	if err != nil {
		t.Fatalf("reading the operator's request metrics: %v", err)
	}
	return w
}

// sameChildren describes the differences between two snapshots ("" when equal).
func sameChildren(a, b map[string]child) string {
	var diff []string
	for _, k := range keys(a) {
		bc, ok := b[k]
		switch {
		case !ok:
			diff = append(diff, "gone: "+k)
		case a[k] != bc:
			diff = append(diff, "changed: "+k+" "+fmtChild(a[k])+" -> "+fmtChild(bc))
		}
	}
	for _, k := range keys(b) {
		if _, ok := a[k]; !ok {
			diff = append(diff, "new: "+k)
		}
	}
	return strings.Join(diff, "\n")
}

func fmtChild(c child) string {
	return "gen " + itoa(c.Generation) + " rv " + c.ResourceVersion + " operator " + c.OperatorTime
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// delete -> owned children garbage-collected by the real controller manager;
// the pepper Secret and the PVCs kept; recreate -> the same pepper adopted.
func TestDeleteCollectsChildrenRecreateAdoptsPepper(t *testing.T) {
	ns := namespace(t, "e2e-delete")
	userSecrets(t, ns)
	stack := fullStack(ns, "gc")
	if err := env.c.Create(ctx(t), stack); err != nil {
		t.Fatal(err)
	}
	stack = waitReady(t, ns, stack.Name, 3*time.Minute)
	pepper := pepperBytes(t, ns, stack)
	owned := 0
	for _, c := range children(t, ns, stack) {
		if c.Owned {
			owned++
		}
	}
	if owned < 8 {
		t.Fatalf("only %d owned children before deletion", owned)
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := env.c.List(ctx(t), &pvcs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}

	if err := env.c.Delete(ctx(t), stack); err != nil {
		t.Fatalf("deleting the AuthStack: %v", err)
	}
	var left map[string]child
	err := poll(2*time.Minute, func() (bool, error) {
		err := env.c.Get(ctx(t), client.ObjectKeyFromObject(stack), &authv1alpha1.AuthStack{})
		if !apierrors.IsNotFound(err) {
			return false, nil
		}
		left = map[string]child{}
		for k, c := range children(t, ns, stack) {
			if c.Owned {
				left[k] = c
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		t.Fatalf("owned children not garbage-collected: %v", keys(left))
	}
	if err := poll(2*time.Minute, func() (bool, error) {
		_, pods := podsByComponent(t, ns, stack.Name)
		return len(pods) == 0, nil
	}); err != nil {
		t.Errorf("pods of the deleted stack still there")
	}
	if got := pepperBytes(t, ns, stack); !bytes.Equal(got, pepper) {
		t.Fatalf("the pepper changed when the stack was deleted")
	}
	for _, p := range pvcs.Items {
		if err := env.c.Get(ctx(t), client.ObjectKeyFromObject(&p), &corev1.PersistentVolumeClaim{}); err != nil {
			t.Errorf("PVC %s not kept: %v", p.Name, err)
		}
	}
	t.Logf("deleted: %d owned children collected, pepper and %d PVCs kept", owned, len(pvcs.Items))

	again := fullStack(ns, "gc")
	if err := env.c.Create(ctx(t), again); err != nil {
		t.Fatal(err)
	}
	again = waitReady(t, ns, again.Name, 3*time.Minute)
	if got := pepperBytes(t, ns, again); !bytes.Equal(got, pepper) {
		t.Fatalf("the recreated stack did not adopt the pepper")
	}
	dep := &appsv1.Deployment{}
	if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: resources.AuthServerName(again)}, dep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == resources.PepperSecretName(again) {
			found = true
		}
	}
	if !found {
		t.Errorf("the recreated Deployment does not mount the pepper Secret %s", resources.PepperSecretName(again))
	}
}

// Kill the operator with SIGKILL mid-reconcile, 12 times, while the specs of
// three stacks keep changing (the operator reconciles one at a time, so a kill
// after its first write lands with work left): it converges to the last
// specs, with one set of children each and every pepper byte-identical throughout.
func TestOperatorKilledMidReconcileConverges(t *testing.T) {
	ns := namespace(t, "e2e-kill")
	userSecrets(t, ns)
	names := []string{"kill-a", "kill-b", "kill-c"}
	peppers := map[string][]byte{}
	for _, n := range names {
		if err := env.c.Create(ctx(t), fullStack(ns, n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		peppers[n] = pepperBytes(t, ns, waitReady(t, ns, n, 3*time.Minute))
	}
	t.Cleanup(func() {
		if err := env.op.start(); err != nil {
			t.Errorf("restarting the operator: %v", err)
		}
	})
	checkPeppers := func(round int) {
		t.Helper()
		for _, n := range names {
			if got := pepperBytes(t, ns, getStack(t, ns, n)); !bytes.Equal(got, peppers[n]) {
				t.Fatalf("round %d: the pepper of %s changed", round, n)
			}
		}
	}

	levels := []authv1alpha1.LogLevel{"debug", "warn", "error", "info"}
	rng := rand.New(rand.NewPCG(1, 2))
	const kills = 12
	mid := 0
	env.op.kill()
	for i := 0; i < kills; i++ {
		for _, n := range names {
			updateStack(t, ns, n, func(s *authv1alpha1.AuthStack) {
				s.Spec.AuthServer.LogLevel = levels[i%len(levels)]
				if s.Spec.AuthServer.PodTemplate == nil {
					s.Spec.AuthServer.PodTemplate = &authv1alpha1.PodTemplateOverrides{}
				}
				s.Spec.AuthServer.PodTemplate.Annotations = map[string]string{"e2e/round": itoa(int64(i))}
			})
		}
		if err := env.op.start(); err != nil {
			t.Fatalf("round %d: starting the operator: %v", i, err)
		}
		// Most rounds: kill within milliseconds of its first write request.
		// Every third: at a random moment of its first 1.5 s.
		if i%3 != 2 {
			_ = pollEvery(5*time.Millisecond, 20*time.Second, func() (bool, error) {
				w, err := env.op.writes()
				return err == nil && w > 0, nil
			})
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		} else {
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		}
		w, _ := env.op.writes()
		env.op.kill()
		behind := 0
		for _, n := range names {
			if st := getStack(t, ns, n); st.Status.ObservedGeneration < st.Generation {
				behind++
			}
		}
		if w > 0 && behind > 0 {
			mid++ // it had written, and had work left
		}
		checkPeppers(i)
	}
	if err := env.op.start(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		final := waitReady(t, ns, n, 3*time.Minute)
		dep := &appsv1.Deployment{}
		if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: resources.AuthServerName(final)}, dep); err != nil {
			t.Fatal(err)
		}
		logLevel := ""
		for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "LOG_LEVEL" {
				logLevel = e.Value
			}
		}
		if logLevel != string(final.Spec.AuthServer.LogLevel) {
			t.Errorf("%s: Deployment LOG_LEVEL = %q, want the last spec's %q", n, logLevel, final.Spec.AuthServer.LogLevel)
		}
		if got := dep.Spec.Template.Annotations["e2e/round"]; got != itoa(kills-1) {
			t.Errorf("%s: pod template annotation e2e/round = %q, want %q", n, got, itoa(kills-1))
		}
	}
	checkPeppers(kills)
	var secrets corev1.SecretList
	if err := env.c.List(ctx(t), &secrets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	pepperSecrets := 0
	for _, s := range secrets.Items {
		if strings.HasSuffix(s.Name, "-pepper") {
			pepperSecrets++
		}
	}
	if pepperSecrets != len(names) {
		t.Errorf("%d pepper Secrets, want %d", pepperSecrets, len(names))
	}
	var deps appsv1.DeploymentList
	if err := env.c.List(ctx(t), &deps, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 2*len(names) {
		t.Errorf("%d Deployments, want %d (authserver and pgbouncer per stack)", len(deps.Items), 2*len(names))
	}
	// Converged means quiet: once the last rollouts are done (the operator
	// reports replica counts in status while they run), no more writes.
	for _, n := range names {
		rolledOut(t, ns, n+"-authserver", 3)
	}
	if err := poll(time.Minute, func() (bool, error) {
		w0 := mustWrites(t)
		time.Sleep(4 * time.Second)
		return mustWrites(t) == w0, nil
	}); err != nil {
		t.Errorf("the operator still writes a minute after converging")
	}
	if mid < kills/2 {
		t.Errorf("only %d of the %d kills landed mid-reconcile (after a write, with a stack not yet caught up); want at least %d", mid, kills, kills/2)
	}
	t.Logf("%d SIGKILLs (%d after the operator's first write with work left); converged to round %d, peppers unchanged", kills, mid, kills-1)
}
