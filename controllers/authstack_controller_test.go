package controllers

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// waitFor bounds every wait for the operator. Generous: CI runs every package at once
// on two cores, where one reconcile can take seconds; a test that passes waits far less.
const waitFor = 60 * time.Second

// eventually retries check until it returns nil or the time is up.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %s: %v", what, waitFor, err)
}

// createReferencedSecrets creates the Secrets a sample stack reads.
func createReferencedSecrets(t *testing.T, ns string) {
	t.Helper()
	for name, data := range map[string]map[string]string{
		"db":    {"url": "postgres://auth:s3cret@db.example:5432/auth?sslmode=require"},
		"redis": {"url": "redis://:r3dis@redis.example:6379/0"},
		"smtp":  {"password": "smtp-pass"},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
		if err := k8s.Create(context.Background(), s); err != nil {
			t.Fatalf("creating Secret %s: %v", name, err)
		}
	}
}

func sampleStack(ns, name string) *authv1alpha1.AuthStack {
	return &authv1alpha1.AuthStack{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authv1alpha1.AuthStackSpec{
			AuthServer: authv1alpha1.AuthServerSpec{
				FrontendURL: "https://app.example.com",
				MailFrom:    "Example <noreply@example.com>",
			},
			Database: authv1alpha1.DatabaseSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
			Redis:    authv1alpha1.RedisSpec{URLSecretRef: &authv1alpha1.SecretKeyRef{Name: "redis", Key: "url"}},
			SMTP: authv1alpha1.SMTPSpec{Host: "smtp.example.com", Username: "mailer",
				PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: "smtp", Key: "password"}},
			Ingress: authv1alpha1.IngressSpec{Enabled: true, Host: "auth.example.com",
				TLS: &authv1alpha1.IngressTLS{ClusterIssuer: "letsencrypt-prod"}},
		},
	}
}

// setup makes a namespace with the referenced Secrets, starts an operator for it and
// creates a sample stack.
func setup(t *testing.T) (string, *operator, *authv1alpha1.AuthStack) {
	t.Helper()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	stack := sampleStack(ns, "auth")
	if err := k8s.Create(context.Background(), stack); err != nil {
		t.Fatalf("creating AuthStack: %v", err)
	}
	return ns, op, stack
}

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func getDeployment(t *testing.T, ns string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	eventually(t, "authserver Deployment exists", func() error {
		return k8s.Get(context.Background(), key(ns, "auth-authserver"), d)
	})
	return d
}

func getPepper(t *testing.T, ns string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	eventually(t, "pepper Secret exists", func() error {
		return k8s.Get(context.Background(), key(ns, "auth-pepper"), s)
	})
	return s
}

func envValue(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// reconcileNow runs one reconcile of the stack directly, outside the work queue.
func reconcileNow(t *testing.T, op *operator, ns string) {
	t.Helper()
	if _, err := op.reconciler.Reconcile(context.Background(), ctrl.Request{NamespacedName: key(ns, "auth")}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
}

func TestCreateRendersEveryChild(t *testing.T) {
	t.Parallel()
	ns, _, stack := setup(t)
	ctx := context.Background()

	dep := getDeployment(t, ns)
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != testImage {
		t.Errorf("image = %q, want the operator default %q", c.Image, testImage)
	}
	if dep.Spec.Replicas != nil && *dep.Spec.Replicas != 1 { // nil in our apply; the API server defaults 1
		t.Errorf("replicas = %d: with autoscaling on, the HPA owns them", *dep.Spec.Replicas)
	}
	// DATABASE_URL is the pooled URL the operator composes (pgbouncer is on by default);
	// migrations use the database itself.
	for name, secret := range map[string]string{"DATABASE_URL": "auth-connection", "DATABASE_DIRECT_URL": "db", "REDIS_URL": "redis", "SMTP_PASS": "smtp"} {
		e, ok := envValue(c, name)
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret || e.Value != "" {
			t.Errorf("%s must come from Secret %q by reference, got %+v", name, secret, e)
		}
	}
	if e, _ := envValue(c, "AUTH_PEPPER_FILE"); e.Value != "/var/run/authstack/pepper/pepper" {
		t.Errorf("AUTH_PEPPER_FILE = %q", e.Value)
	}
	if e, _ := envValue(c, "AUTH_ARGON2_MEMORY_KIB"); e.Value != "19456" {
		t.Errorf("AUTH_ARGON2_MEMORY_KIB = %q, want the CRD default 19456", e.Value)
	}
	if dep.Spec.Template.Annotations[resources.AnnotationConfigHash] == "" {
		t.Error("pod template has no config hash")
	}

	pepper := getPepper(t, ns)
	if len(pepper.OwnerReferences) != 0 {
		t.Errorf("pepper Secret must not be owned (it survives the stack), has %v", pepper.OwnerReferences)
	}
	if len(pepper.Data["pepper"]) != 64 || !ptr.Deref(pepper.Immutable, false) {
		t.Errorf("pepper: %d bytes of hex, immutable %v", len(pepper.Data["pepper"]), pepper.Immutable)
	}

	owned := []client.Object{&corev1.Service{}, &autoscalingv2.HorizontalPodAutoscaler{}, &policyv1.PodDisruptionBudget{}, &networkingv1.Ingress{}}
	for _, obj := range append(owned, dep) {
		eventually(t, fmt.Sprintf("%T exists", obj), func() error { return k8s.Get(ctx, key(ns, "auth-authserver"), obj) })
		ref := metav1.GetControllerOf(obj)
		if ref == nil || ref.Kind != "AuthStack" || ref.Name != stack.Name || ref.UID == "" {
			t.Errorf("%T has no controller reference to the AuthStack: %v", obj, obj.GetOwnerReferences())
		}
		for _, mf := range obj.GetManagedFields() {
			if mf.Operation == metav1.ManagedFieldsOperationApply && mf.Manager != resources.FieldOwner {
				t.Errorf("%T applied by an unexpected manager %q", obj, mf.Manager)
			}
		}
	}
	ing := owned[3].(*networkingv1.Ingress)
	if ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt-prod" || ing.Spec.TLS[0].SecretName != "auth-tls" {
		t.Errorf("ingress TLS: annotations %v tls %v", ing.Annotations, ing.Spec.TLS)
	}

	eventually(t, "status reports the stack", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, authv1alpha1.ConditionReady)
		switch {
		case got.Status.ObservedGeneration != got.Generation:
			return fmt.Errorf("observedGeneration %d, generation %d", got.Status.ObservedGeneration, got.Generation)
		case c == nil || c.ObservedGeneration != got.Generation:
			return fmt.Errorf("no Ready condition for this generation: %+v", got.Status.Conditions)
		case got.Status.URL != "https://auth.example.com/auth":
			return fmt.Errorf("url %q", got.Status.URL)
		case got.Status.PepperSecretName != "auth-pepper":
			return fmt.Errorf("pepperSecretName %q", got.Status.PepperSecretName)
		}
		return nil
	})
}

func TestSpecChangeUpdatesDeploymentAndTogglesOptionalChildren(t *testing.T) {
	t.Parallel()
	ns, _, _ := setup(t)
	ctx := context.Background()
	getDeployment(t, ns)

	stack := &authv1alpha1.AuthStack{}
	if err := k8s.Get(ctx, key(ns, "auth"), stack); err != nil {
		t.Fatal(err)
	}
	base := client.MergeFrom(stack.DeepCopy()) // no resourceVersion: the operator's status writes don't conflict
	stack.Spec.AuthServer.LogLevel = "debug"
	stack.Spec.AuthServer.Image = "example.com/authserver:v2"
	stack.Spec.AuthServer.Autoscaling.Enabled = ptr.To(false)
	stack.Spec.AuthServer.Replicas = ptr.To[int32](5)
	stack.Spec.Ingress.Enabled = false
	if err := k8s.Patch(ctx, stack, base); err != nil {
		t.Fatalf("updating spec: %v", err)
	}
	eventually(t, "Deployment follows the spec", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), d); err != nil {
			return err
		}
		c := d.Spec.Template.Spec.Containers[0]
		if e, _ := envValue(c, "LOG_LEVEL"); e.Value != "debug" {
			return fmt.Errorf("LOG_LEVEL %q", e.Value)
		}
		if c.Image != "example.com/authserver:v2" || d.Spec.Template.Spec.InitContainers[0].Image != c.Image {
			return fmt.Errorf("image %q", c.Image)
		}
		if ptr.Deref(d.Spec.Replicas, 0) != 5 {
			return fmt.Errorf("replicas %v", d.Spec.Replicas)
		}
		return nil
	})
	for _, obj := range []client.Object{&autoscalingv2.HorizontalPodAutoscaler{}, &networkingv1.Ingress{}} {
		eventually(t, fmt.Sprintf("%T deleted once disabled", obj), func() error {
			err := k8s.Get(ctx, key(ns, "auth-authserver"), obj)
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (err %v)", err)
		})
	}
	eventually(t, "status URL follows the Ingress switch", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		if want := "http://auth-authserver." + ns + ".svc:3000"; got.Status.URL != want {
			return fmt.Errorf("url %q, want %q", got.Status.URL, want)
		}
		return nil
	})
}

func TestHandEditIsReverted(t *testing.T) {
	t.Parallel()
	ns, _, _ := setup(t)
	ctx := context.Background()
	getDeployment(t, ns)

	// A person edits the image, an env value and a Service port with plain updates
	// (kubectl edit), retried on conflict like kubectl does.
	handEdit(t, key(ns, "auth-authserver"), &appsv1.Deployment{}, func(obj client.Object) {
		c := &obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
		c.Image = "evil.example.com/authserver:latest"
		for i, e := range c.Env {
			if e.Name == "LOG_LEVEL" {
				c.Env[i].Value = "error"
			}
		}
	})
	handEdit(t, key(ns, "auth-authserver"), &corev1.Service{}, func(obj client.Object) {
		obj.(*corev1.Service).Spec.Ports[0].Port = 8080
	})

	eventually(t, "hand edits reverted", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), d); err != nil {
			return err
		}
		c := d.Spec.Template.Spec.Containers[0]
		if c.Image != testImage {
			return fmt.Errorf("image still %q", c.Image)
		}
		if e, _ := envValue(c, "LOG_LEVEL"); e.Value != "info" {
			return fmt.Errorf("LOG_LEVEL still %q", e.Value)
		}
		s := &corev1.Service{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), s); err != nil {
			return err
		}
		if s.Spec.Ports[0].Port != 3000 {
			return fmt.Errorf("service port still %d", s.Spec.Ports[0].Port)
		}
		return nil
	})
}

// handEdit reads obj, changes it with edit and updates it as another field manager.
func handEdit(t *testing.T, k types.NamespacedName, obj client.Object, edit func(client.Object)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(context.Background(), k, obj); err != nil {
			return err
		}
		edit(obj)
		return k8s.Update(context.Background(), obj, client.FieldOwner("kubectl-edit"))
	})
	if err != nil {
		t.Fatalf("hand edit of %T: %v", obj, err)
	}
}

func TestRotatedSecretRollsPods(t *testing.T) {
	t.Parallel()
	ns, _, _ := setup(t)
	ctx := context.Background()
	before := getDeployment(t, ns).Spec.Template.Annotations[resources.AnnotationConfigHash]

	db := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "db"), db); err != nil {
		t.Fatal(err)
	}
	db.Data["url"] = []byte("postgres://auth:r0tated@db.example:5432/auth?sslmode=require")
	if err := k8s.Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	var after string
	eventually(t, "config hash changes after the rotation", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), d); err != nil {
			return err
		}
		after = d.Spec.Template.Annotations[resources.AnnotationConfigHash]
		if after == before {
			return fmt.Errorf("hash still %s", after)
		}
		return nil
	})

	// A change to a key the stack does not read rolls nothing.
	db.Data["unrelated"] = []byte("x")
	if err := k8s.Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if got := getDeployment(t, ns).Spec.Template.Annotations[resources.AnnotationConfigHash]; got != after {
		t.Errorf("an unrelated key changed the hash: %s -> %s", after, got)
	}
}

func TestNoOpReconcileWritesNothing(t *testing.T) {
	t.Parallel()
	ns, op, _ := setup(t)
	getDeployment(t, ns)
	// Let the controller settle: several reconciles in a row that write nothing.
	settle(t, op, ns)
	eventsBefore := countEvents(t, ns)
	before := op.writes.count()
	for range 10 {
		reconcileNow(t, op, ns)
	}
	if d := op.writes.count() - before; d != 0 {
		t.Errorf("10 no-op reconciles sent %d writes to the API server, want 0", d)
	}
	if got := countEvents(t, ns); got != eventsBefore {
		t.Errorf("no-op reconciles recorded %d new events", got-eventsBefore)
	}
	if before == 0 {
		t.Error("the counter saw no writes at all: it is not wired to the reconciler")
	}
}

func countEvents(t *testing.T, ns string) int {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

func TestPepperSurvivesReconcilesRestartAndDeletion(t *testing.T) {
	t.Parallel()
	ns, op, _ := setup(t)
	ctx := context.Background()
	first := getPepper(t, ns)

	for range 20 {
		reconcileNow(t, op, ns)
	}
	op.shutdown()
	startOperator(t, ns) // a new manager process, as after an operator restart
	time.Sleep(2 * time.Second)

	again := getPepper(t, ns)
	if !bytes.Equal(first.Data["pepper"], again.Data["pepper"]) || again.UID != first.UID || again.ResourceVersion != first.ResourceVersion {
		t.Fatalf("the pepper Secret changed across reconciles and a restart")
	}

	stack := &authv1alpha1.AuthStack{}
	if err := k8s.Get(ctx, key(ns, "auth"), stack); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, stack); err != nil {
		t.Fatal(err)
	}
	eventually(t, "AuthStack deleted", func() error {
		if err := k8s.Get(ctx, key(ns, "auth"), &authv1alpha1.AuthStack{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
	kept := getPepper(t, ns)
	if kept.UID != first.UID {
		t.Fatal("the pepper Secret did not survive the AuthStack's deletion")
	}

	// Recreating a stack of the same name adopts the same pepper.
	if err := k8s.Create(ctx, sampleStack(ns, "auth")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recreated stack reports its pepper", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		if got.Status.PepperSecretName != "auth-pepper" {
			return fmt.Errorf("pepperSecretName %q", got.Status.PepperSecretName)
		}
		return nil
	})
	adopted := getPepper(t, ns)
	if adopted.UID != first.UID || !bytes.Equal(adopted.Data["pepper"], first.Data["pepper"]) {
		t.Fatal("the recreated stack did not adopt the existing pepper")
	}
}

func TestDeletedPepperIsNeverRegenerated(t *testing.T) {
	t.Parallel()
	ns, _, _ := setup(t)
	ctx := context.Background()
	pepper := getPepper(t, ns)
	eventually(t, "status records the pepper", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		if got.Status.PepperSecretName == "" {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if err := k8s.Delete(ctx, pepper); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stack reports the lost pepper", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, authv1alpha1.ConditionReady)
		if c == nil || c.Reason != authv1alpha1.ReasonPepperMissing {
			return fmt.Errorf("Ready condition %+v", c)
		}
		return nil
	})
	time.Sleep(time.Second)
	err := k8s.Get(ctx, key(ns, "auth-pepper"), &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("the operator generated a new pepper for a stack that had one (err %v)", err)
	}
}

func TestMissingSecretBlocksAndRecovers(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	op := startOperator(t, ns)
	ctx := context.Background()
	if err := k8s.Create(ctx, sampleStack(ns, "auth")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "condition names the missing Secret and the field", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, authv1alpha1.ConditionAuthServerAvailable)
		if c == nil || c.Reason != authv1alpha1.ReasonSecretNotFound || !strings.Contains(c.Message, `"db"`) || !strings.Contains(c.Message, "spec.database.urlSecretRef") {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	if err := k8s.Get(ctx, key(ns, "auth-authserver"), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a Deployment was rendered although its Secrets are missing (err %v)", err)
	}
	_ = op
	createReferencedSecrets(t, ns)
	getDeployment(t, ns) // the Secret watch wakes the stack up
}

func TestReadyFollowsTheDeployment(t *testing.T) {
	t.Parallel()
	ns, _, _ := setup(t)
	ctx := context.Background()
	dep := getDeployment(t, ns)

	// envtest runs no Deployment controller: report a finished rollout as it would.
	dep.Status = appsv1.DeploymentStatus{
		ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", Message: "ok", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	if err := k8s.Status().Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	markDeploymentAvailable(t, ns, "auth-pgbouncer") // the pooler, on by default (datatier_test.go)
	eventually(t, "Ready becomes True", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, authv1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready %+v", c)
		}
		if got.Status.AuthServer.Summary != "1/1" {
			return fmt.Errorf("summary %q", got.Status.AuthServer.Summary)
		}
		return nil
	})
	eventually(t, "an Event records the transition", func() error {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Reason == "ReadyTrue" && e.Regarding.Name == "auth" {
				return nil
			}
		}
		return fmt.Errorf("no ReadyTrue event among %d", len(list.Items))
	})
}

// A stack whose namespace is being deleted is not retried: every create would be refused.
func TestTerminatingNamespaceIsNotRetried(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	ctx := context.Background()
	if err := k8s.Create(ctx, sampleStack(ns, "auth")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	// envtest runs no namespace controller: the namespace stays Terminating, with the stack in it.
	op := startOperator(t, ns)
	res, err := op.reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: key(ns, "auth")})
	if err != nil || res.RequeueAfter != 0 {
		t.Fatalf("reconcile in a terminating namespace: result %+v, error %v; want neither a retry nor an error", res, err)
	}
	if err := k8s.Get(ctx, key(ns, "auth-pepper"), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a pepper was created in a terminating namespace (err %v)", err)
	}
}
