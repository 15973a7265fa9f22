package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// installCNPGCRD installs the minimal Cluster CRD of testdata/cnpg-crds (idempotent).
func installCNPGCRD(t *testing.T) {
	t.Helper()
	if _, err := envtest.InstallCRDs(restConfig, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("testdata", "cnpg-crds")}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatalf("installing the CloudNativePG Cluster CRD: %v", err)
	}
}

// cnpgAppSecret is shaped like the Secret CloudNativePG writes for the application
// user of Cluster "pg" (its documented keys; type basic-auth).
func cnpgAppSecret(ns, password string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pg-app", Namespace: ns, Labels: map[string]string{"cnpg.io/cluster": "pg", "cnpg.io/reload": "true"}},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{
			"username": "app", "password": password, "dbname": "app", "host": "pg-rw", "port": "5432",
			"uri":           "postgresql://app:" + password + "@pg-rw." + ns + ":5432/app",
			"jdbc-uri":      "jdbc:postgresql://pg-rw." + ns + ":5432/app?password=" + password + "&user=app",
			"fqdn-uri":      "postgresql://app:" + password + "@pg-rw." + ns + ".svc.cluster.local:5432/app",
			"fqdn-jdbc-uri": "jdbc:postgresql://pg-rw." + ns + ".svc.cluster.local:5432/app?password=" + password + "&user=app",
			"pgpass":        "pg-rw:5432:app:app:" + password + "\n",
		},
	}
}

// setClusterStatus writes the status CloudNativePG would report for Cluster pg.
func setClusterStatus(t *testing.T, ns string, ready int64, phase string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(resources.CNPGClusterGVK)
		if err := k8s.Get(context.Background(), key(ns, "pg"), u); err != nil {
			return err
		}
		u.Object["status"] = map[string]any{"readyInstances": ready, "instances": int64(3), "phase": phase}
		return k8s.Status().Update(context.Background(), u)
	})
	if err != nil {
		t.Fatalf("writing the Cluster's status: %v", err)
	}
}

// waitCNPGCondition reconciles the stack until its condition typ has status and reason.
func waitCNPGCondition(t *testing.T, op *operator, ns, typ string, status metav1.ConditionStatus, reason, inMessage string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s %s %s", typ, status, reason), func() error {
		reconcileNow(t, op, ns)
		s := &authv1alpha1.AuthStack{}
		if err := k8s.Get(context.Background(), key(ns, "auth"), s); err != nil {
			return err
		}
		c := meta.FindStatusCondition(s.Status.Conditions, typ)
		if c == nil || c.Status != status || c.Reason != reason || !strings.Contains(c.Message, inMessage) || c.ObservedGeneration != s.Generation {
			return fmt.Errorf("%s is %+v", typ, c)
		}
		return nil
	})
}

func connectionValue(t *testing.T, ns, k string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), key(ns, "auth-connection"), s); err != nil {
		t.Fatalf("reading the connection Secret: %v", err)
	}
	return string(s.Data[k])
}

func TestCloudNativePGCluster(t *testing.T) {
	t.Parallel()
	installCNPGCRD(t)
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	ctx := context.Background()
	stack := sampleStack(ns, "auth")
	stack.Spec.Database = authv1alpha1.DatabaseSpec{CloudNativePG: &authv1alpha1.CloudNativePGSpec{Cluster: "pg"}}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}

	// 1. Neither the Cluster nor its Secret: reported, and every child that does not
	// need the connection is there.
	waitCNPGCondition(t, op, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, authv1alpha1.ReasonSecretNotFound, `"pg-app"`)
	waitCNPGCondition(t, op, ns, authv1alpha1.ConditionAuthServerAvailable, metav1.ConditionFalse, authv1alpha1.ReasonSecretNotFound, "waiting for the database connection")
	if err := k8s.Get(ctx, key(ns, "auth-authserver"), &networkingv1.Ingress{}); err != nil {
		t.Errorf("the Ingress waits for the database Secret: %v", err)
	}
	for name, obj := range map[string]interface {
		GetName() string
	}{"auth-authserver": &appsv1.Deployment{}, "auth-pgbouncer": &appsv1.Deployment{}} {
		if err := k8s.Get(ctx, key(ns, name), obj.(*appsv1.Deployment)); !apierrors.IsNotFound(err) {
			t.Errorf("Deployment %s exists without a database connection (err %v)", name, err)
		}
	}
	np := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(ctx, key(ns, "auth-pgbouncer"), np); err != nil {
		t.Fatalf("pgbouncer NetworkPolicy: %v", err)
	}
	if !egressTo(np, map[string]string{resources.LabelCNPGCluster: "pg"}, 5432) {
		t.Errorf("pgbouncer may not reach the Cluster's pods: %+v", np.Spec.Egress)
	}

	// 2. The Secret appears (its watch reconciles): the authserver and pgbouncer are
	// rendered against the Cluster's -rw Service; the missing Cluster is reported.
	if err := k8s.Create(ctx, cnpgAppSecret(ns, "first-pass")); err != nil {
		t.Fatal(err)
	}
	getDeployment(t, ns)
	waitCNPGCondition(t, op, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, authv1alpha1.ReasonClusterNotFound, `"pg"`)
	if got, want := connectionValue(t, ns, resources.ConnectionDatabaseDirectURLKey), "postgres://app:first-pass@pg-rw:5432/app?sslmode=require"; got != want {
		t.Errorf("direct URL %q, want %q", got, want)
	}
	if got := connectionValue(t, ns, resources.ConnectionDatabaseURLKey); !strings.Contains(got, "@auth-pgbouncer.") {
		t.Errorf("with pgbouncer on, DATABASE_URL is %q", got)
	}
	pgb := &appsv1.Deployment{}
	eventually(t, "pgbouncer Deployment", func() error { return k8s.Get(ctx, key(ns, "auth-pgbouncer"), pgb) })

	// 3. The Cluster reports: readiness follows its instances.
	cluster := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"instances": int64(3)}}}
	cluster.SetGroupVersionKind(resources.CNPGClusterGVK)
	cluster.SetNamespace(ns)
	cluster.SetName("pg")
	if err := k8s.Create(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	setClusterStatus(t, ns, 1, "Setting up primary")
	waitCNPGCondition(t, op, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, authv1alpha1.ReasonWaitingForPods, "1 of 3 instances ready")
	setClusterStatus(t, ns, 3, "Cluster in healthy state")
	waitCNPGCondition(t, op, ns, authv1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, authv1alpha1.ReasonAvailable, "3 of 3 instances ready")

	// 4. Rotation: a new password in pg-app rolls the authserver and pgbouncer pods.
	hash := func(name string) string {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, name), d); err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Annotations[resources.AnnotationConfigHash]
	}
	authBefore, poolBefore := hash("auth-authserver"), hash("auth-pgbouncer")
	if authBefore == "" || poolBefore == "" {
		t.Fatalf("no config hash on the pod templates: %q %q", authBefore, poolBefore)
	}
	rotated := cnpgAppSecret(ns, "second-pass")
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live := &corev1.Secret{}
		if err := k8s.Get(ctx, key(ns, "pg-app"), live); err != nil {
			return err
		}
		live.StringData = rotated.StringData
		return k8s.Update(ctx, live)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rotation rolls both Deployments", func() error {
		if a, p := hash("auth-authserver"), hash("auth-pgbouncer"); a == authBefore || p == poolBefore {
			return fmt.Errorf("hashes %s/%s unchanged", a, p)
		}
		if got := connectionValue(t, ns, resources.ConnectionDatabaseDirectURLKey); !strings.Contains(got, ":second-pass@") {
			return fmt.Errorf("direct URL not rotated")
		}
		return nil
	})

	// 5. Nothing changed: no writes.
	settle(t, op, ns)
	before := op.writes.count()
	for range 10 {
		reconcileNow(t, op, ns)
	}
	if d := op.writes.count() - before; d != 0 {
		t.Errorf("10 no-op reconciles of a CloudNativePG stack sent %d writes", d)
	}

	// 6. CloudNativePG's own Pooler instead of pgbouncer.
	editStack(t, ns, "auth", func(s *authv1alpha1.AuthStack) {
		s.Spec.Pooler.Enabled = ptr.To(false)
		s.Spec.Database.CloudNativePG.Pooler = "pg-pooler-rw"
	})
	eventually(t, "the authserver uses the CloudNativePG Pooler", func() error {
		if got := connectionValue(t, ns, resources.ConnectionDatabaseURLKey); got != "postgres://app:second-pass@pg-pooler-rw:5432/app?sslmode=require" {
			return fmt.Errorf("DATABASE_URL %q", got)
		}
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), d); err != nil {
			return err
		}
		e, _ := envValue(d.Spec.Template.Spec.Containers[0], "DATABASE_DIRECT_URL")
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Key != resources.ConnectionDatabaseDirectURLKey {
			return fmt.Errorf("DATABASE_DIRECT_URL %+v: migrations must go to -rw", e)
		}
		np := &networkingv1.NetworkPolicy{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), np); err != nil {
			return err
		}
		if !egressTo(np, map[string]string{resources.LabelCNPGPooler: "pg-pooler-rw"}, 5432) || !egressTo(np, map[string]string{resources.LabelCNPGCluster: "pg"}, 5432) {
			return fmt.Errorf("authserver egress %+v", np.Spec.Egress)
		}
		return nil
	})
}

// egressTo says whether np allows egress to the pods labelled labels on port.
func egressTo(np *networkingv1.NetworkPolicy, labels map[string]string, port int32) bool {
	for _, r := range np.Spec.Egress {
		for _, peer := range r.To {
			if peer.PodSelector == nil || peer.NamespaceSelector != nil || fmt.Sprint(peer.PodSelector.MatchLabels) != fmt.Sprint(labels) {
				continue
			}
			for _, p := range r.Ports {
				if p.Port != nil && p.Port.IntVal == port {
					return true
				}
			}
		}
	}
	return false
}

// TestDocsCloudNativePG: docs/data-tier.md's promises about CloudNativePG hold: the keys
// read, the sslmode and the re-check interval.
func TestDocsCloudNativePG(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "data-tier.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(raw)), " ")
	for _, claim := range []string{
		fmt.Sprintf("the stack looks again every %d seconds", int(cnpgRecheck.Seconds())),
		"?sslmode=require",
		"it reads `username`, `password`, `host` (the `<cluster>-rw` Service), `port` and `dbname`",
	} {
		if !strings.Contains(doc, claim) {
			t.Errorf("docs/data-tier.md no longer says %q", claim)
		}
	}
	if fmt.Sprint(resources.CNPGAppSecretKeys) != "[username password host port dbname]" {
		t.Errorf("the keys read changed (%v): update docs/data-tier.md", resources.CNPGAppSecretKeys)
	}
	data := map[string][]byte{}
	for k, v := range cnpgAppSecret("ns", "pw").StringData {
		data[k] = []byte(v)
	}
	if db, err := resources.CNPGDatabaseURL(data); err != nil || db.SSLMode != "require" {
		t.Errorf("sslmode %q (%v), the doc says require", db.SSLMode, err)
	}
}
