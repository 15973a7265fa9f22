package controllers

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// getMonitoring reads one monitoring object of stack "auth".
func getMonitoring(ctx context.Context, ns string, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, k8s.Get(ctx, key(ns, "auth-authserver"), u)
}

func requireReady(t *testing.T, ns string) {
	t.Helper()
	eventually(t, "Ready is True", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(context.Background(), key(ns, "auth"), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, authv1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("Ready %+v at generation %d/%d", c, got.Status.ObservedGeneration, got.Generation)
		}
		return nil
	})
}

// TestMonitoringObjectsOnlyWithTheirCRDs runs first without the Prometheus
// Operator CRDs (nothing is created, Ready is unaffected), then installs minimal
// ones into the shared envtest. It is not parallel, so it runs before the
// parallel tests; they never enable monitoring, so the CRDs do not change them.
func TestMonitoringObjectsOnlyWithTheirCRDs(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	stack := sampleStack(ns, "auth")
	stack.Spec.Monitoring = authv1alpha1.MonitoringSpec{
		Enabled:        ptr.To(true),
		ServiceMonitor: authv1alpha1.MonitoringObjectSpec{Labels: map[string]string{"release": "kps", "team": "auth"}},
		PrometheusRule: authv1alpha1.MonitoringObjectSpec{Labels: map[string]string{"role": "alert-rules"}},
	}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	getDeployment(t, ns)
	markDeploymentAvailable(t, ns, "auth-authserver")
	markDeploymentAvailable(t, ns, "auth-pgbouncer")

	// 1. Without the CRDs: no error, Ready True, a re-check scheduled.
	requeue, err := op.reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: key(ns, "auth")})
	if err != nil {
		t.Fatalf("reconcile without the monitoring CRDs: %v", err)
	}
	if requeue.RequeueAfter != monitoringRecheck {
		t.Errorf("without the CRDs, RequeueAfter = %v, want %v to look for them again", requeue.RequeueAfter, monitoringRecheck)
	}
	requireReady(t, ns)
	if _, err := getMonitoring(ctx, ns, resources.ServiceMonitorGVK); !meta.IsNoMatchError(err) {
		t.Fatalf("the ServiceMonitor kind is served before the test installs it (err %v): this test must run first", err)
	}

	// 2. Install the CRDs; the next look (forced here, a minute in production) creates both.
	if _, err := envtest.InstallCRDs(restConfig, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("testdata", "monitoring-crds")}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatalf("installing the monitoring CRDs: %v", err)
	}
	op.reconciler.monitoring.forget()
	eventually(t, "ServiceMonitor and PrometheusRule created", func() error {
		if _, err := op.reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: key(ns, "auth")}); err != nil {
			return err
		}
		for _, gvk := range monitoringKinds {
			if _, err := getMonitoring(ctx, ns, gvk); err != nil {
				return err
			}
		}
		return nil
	})
	sm, _ := getMonitoring(ctx, ns, resources.ServiceMonitorGVK)
	if sm.GetLabels()["release"] != "kps" || sm.GetLabels()["team"] != "auth" {
		t.Errorf("ServiceMonitor labels = %v", sm.GetLabels())
	}
	if ref := metav1.GetControllerOf(sm); ref == nil || ref.Name != "auth" {
		t.Errorf("ServiceMonitor controller = %+v", ref)
	}
	if port, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints"); len(port) != 1 {
		t.Errorf("ServiceMonitor endpoints = %v", port)
	}
	pr, _ := getMonitoring(ctx, ns, resources.PrometheusRuleGVK)
	if pr.GetLabels()["role"] != "alert-rules" {
		t.Errorf("PrometheusRule labels = %v", pr.GetLabels())
	}
	requireReady(t, ns)

	// 3. Nothing changed: no writes at all.
	settle(t, op, ns)
	before := op.writes.count()
	for range 5 {
		reconcileNow(t, op, ns)
	}
	if d := op.writes.count() - before; d != 0 {
		t.Errorf("5 no-op reconciles with monitoring on sent %d writes, want 0", d)
	}

	// 4. A hand edit of a field we own is reverted; a label dropped from the spec goes.
	patch := []byte(`{"spec":{"endpoints":[{"port":"http","interval":"5s"}]}}`)
	edited := &unstructured.Unstructured{}
	edited.SetGroupVersionKind(resources.ServiceMonitorGVK)
	edited.SetNamespace(ns)
	edited.SetName("auth-authserver")
	if err := k8s.Patch(ctx, edited, client.RawPatch("application/merge-patch+json", patch), client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the AuthStack drops a ServiceMonitor label", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		got.Spec.Monitoring.ServiceMonitor.Labels = map[string]string{"release": "kps"}
		return k8s.Update(ctx, got)
	})
	eventually(t, "hand edit reverted and label removed", func() error {
		reconcileNow(t, op, ns) // the cache may not hold the new spec yet: try again
		sm, err := getMonitoring(ctx, ns, resources.ServiceMonitorGVK)
		if err != nil {
			return err
		}
		eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		if len(eps) != 1 || eps[0].(map[string]any)["port"] != resources.PortNameMetrics {
			return fmt.Errorf("hand edit not reverted: endpoints %v", eps)
		}
		if _, still := sm.GetLabels()["team"]; still || sm.GetLabels()["release"] != "kps" {
			return fmt.Errorf("labels after dropping team: %v", sm.GetLabels())
		}
		return nil
	})

	// 5. Monitoring off: both deleted, Ready still True.
	eventually(t, "the AuthStack turns monitoring off", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		got.Spec.Monitoring.Enabled = ptr.To(false)
		return k8s.Update(ctx, got)
	})
	eventually(t, "monitoring objects deleted", func() error {
		reconcileNow(t, op, ns)
		for _, gvk := range monitoringKinds {
			if _, err := getMonitoring(ctx, ns, gvk); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s: %v", gvk.Kind, err)
			}
		}
		return nil
	})
	requireReady(t, ns)
}
