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
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// reportDeployment sets the authserver Deployment's replica count (as the HPA does)
// and its status (as the Deployment controller would: Available is False whenever a
// pod is missing, since maxUnavailable is 0).
func reportDeployment(t *testing.T, ns string, replicas, available int32) {
	t.Helper()
	ctx := context.Background()
	d := getDeployment(t, ns)
	if ptr.Deref(d.Spec.Replicas, 1) != replicas {
		base := client.MergeFrom(d.DeepCopy())
		d.Spec.Replicas = ptr.To(replicas)
		if err := k8s.Patch(ctx, d, base, client.FieldOwner("horizontal-pod-autoscaler")); err != nil {
			t.Fatalf("scaling: %v", err)
		}
	}
	status := corev1.ConditionTrue
	if available < replicas {
		status = corev1.ConditionFalse
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: available, AvailableReplicas: available,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: status,
			Reason: "MinimumReplicasAvailable", Message: "reported by the test", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	if err := k8s.Status().Update(ctx, d); err != nil {
		t.Fatalf("reporting the Deployment: %v", err)
	}
}

// waitStatus waits until the operator reports the authserver as summary and
// Progressing as progressing, then checks Ready is True.
func waitStatus(t *testing.T, ns, summary string, progressing metav1.ConditionStatus) {
	t.Helper()
	eventually(t, fmt.Sprintf("status %s, Progressing %s", summary, progressing), func() error {
		s := getStack(t, ns)
		p := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionProgressing)
		if s.Status.AuthServer.Summary != summary || p == nil || p.Status != progressing {
			return fmt.Errorf("summary %q, Progressing %+v", s.Status.AuthServer.Summary, p)
		}
		return nil
	})
	s := getStack(t, ns)
	if r := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionReady); r == nil || r.Status != metav1.ConditionTrue || r.ObservedGeneration != s.Generation {
		t.Errorf("at %s Ready is %+v", summary, r)
	}
}

// TestReadyDoesNotFlap: an HPA scale-up and a single pod restart leave Ready True
// (Progressing reports the scale-up) and record no Warning event and no Ready event.
func TestReadyDoesNotFlap(t *testing.T) {
	t.Parallel()
	ns, op, _ := setup(t)
	markDeploymentAvailable(t, ns, "auth-pgbouncer")
	reportDeployment(t, ns, 3, 3)
	waitStatus(t, ns, "3/3", metav1.ConditionFalse)
	readyEvents, warnings := countReadyAndWarningEvents(t, ns)

	reportDeployment(t, ns, 5, 3) // the HPA scales up: two pods are starting
	waitStatus(t, ns, "3/5", metav1.ConditionTrue)
	reportDeployment(t, ns, 5, 5)
	waitStatus(t, ns, "5/5", metav1.ConditionFalse)
	reportDeployment(t, ns, 5, 4) // one pod restarts
	waitStatus(t, ns, "4/5", metav1.ConditionTrue)
	reconcileNow(t, op, ns)
	waitStatus(t, ns, "4/5", metav1.ConditionTrue)

	if r, w := countReadyAndWarningEvents(t, ns); r != readyEvents || w != warnings {
		t.Errorf("scaling and a pod restart recorded %d Ready events and %d Warning events", r-readyEvents, w-warnings)
	}
	// Two pods down of a minimum of three: not serving as promised.
	reportDeployment(t, ns, 3, 1)
	waitCondition(t, ns, authv1alpha1.ConditionAuthServerAvailable, metav1.ConditionFalse, authv1alpha1.ReasonUnavailable)
	waitCondition(t, ns, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonUnavailable)
	if _, w := countReadyAndWarningEvents(t, ns); w != warnings {
		t.Errorf("unavailability (not an error) recorded %d Warning events", w-warnings)
	}
}

func countReadyAndWarningEvents(t *testing.T, ns string) (ready, warning int) {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Reason == "ReadyTrue" || e.Reason == "ReadyFalse" {
			ready++
		}
		if e.Type == corev1.EventTypeWarning {
			warning++
		}
	}
	return ready, warning
}

// TestConditionsDocumentedOnce: docs/gitops.md, the one description of the
// conditions, names every condition type and every reason that sets Degraded.
func TestConditionsDocumentedOnce(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "gitops.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	names := []string{authv1alpha1.ConditionReady, authv1alpha1.ConditionAuthServerAvailable, authv1alpha1.ConditionPoolerReady,
		authv1alpha1.ConditionRedisReady, authv1alpha1.ConditionDatabaseReady, authv1alpha1.ConditionBackupsHealthy,
		authv1alpha1.ConditionProgressing, authv1alpha1.ConditionDegraded, authv1alpha1.ConditionGatewayRouteReady,
		authv1alpha1.ConditionPaused, authv1alpha1.ReasonPaused,
		authv1alpha1.ConditionPepperRotated, authv1alpha1.ReasonRotationInProgress, authv1alpha1.ReasonCountPending,
		authv1alpha1.ReasonReadyToRetire, authv1alpha1.ReasonRetirementBlocked, authv1alpha1.ConditionRestored,
		authv1alpha1.ConditionOperatorDefaultsPending, authv1alpha1.ReasonNewerOperatorDefaults, authv1alpha1.ReasonOperatorDefaultsCurrent,
		authv1alpha1.ConditionDatabasePasswordRotated}
	for reason := range errorReasons {
		names = append(names, reason)
	}
	for _, n := range names {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/gitops.md does not describe %s", n)
		}
	}
}
