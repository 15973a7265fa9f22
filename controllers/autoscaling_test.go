package controllers

import (
	"context"
	"fmt"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// deploymentReplicas is the authserver Deployment's spec.replicas (0 when unset).
func deploymentReplicas(t *testing.T, ns string) int32 {
	t.Helper()
	return ptr.Deref(getDeployment(t, ns).Spec.Replicas, 0)
}

// TestAutoscalingSwitchNeverDropsReplicas: turning autoscaling on keeps the 6 pods
// until the HPA itself scales (it then owns the count, and the operator leaves it
// alone); turning it off moves to spec.replicas in one step and removes the HPA.
func TestAutoscalingSwitchNeverDropsReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	stack := sampleStack(ns, "auth")
	stack.Spec.AuthServer.Replicas = ptr.To[int32](6)
	stack.Spec.AuthServer.Autoscaling.Enabled = ptr.To(false)
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	eventually(t, "6 replicas", func() error {
		if n := deploymentReplicas(t, ns); n != 6 {
			return fmt.Errorf("%d replicas", n)
		}
		return nil
	})

	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.AuthServer.Autoscaling.Enabled = ptr.To(true) })
	get(t, ns, "auth-authserver", &autoscalingv2.HorizontalPodAutoscaler{})
	settle(t, op, ns)
	if n := deploymentReplicas(t, ns); n != 6 {
		t.Fatalf("turning autoscaling on changed the replicas to %d, want 6 until the HPA scales", n)
	}

	// The HPA scales through the scale subresource: from then on the count is its own.
	dep := getDeployment(t, ns)
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 4}}
	if err := k8s.SubResource("scale").Update(ctx, dep, client.WithSubResourceBody(scale), client.FieldOwner("horizontal-pod-autoscaler")); err != nil {
		t.Fatalf("scaling as the HPA: %v", err)
	}
	settle(t, op, ns)
	if n := deploymentReplicas(t, ns); n != 4 {
		t.Fatalf("the operator changed the HPA's count to %d, want 4", n)
	}

	updateStack(t, ns, func(s *authv1alpha1.AuthStack) {
		s.Spec.AuthServer.Autoscaling.Enabled = ptr.To(false)
		s.Spec.AuthServer.Replicas = ptr.To[int32](5)
	})
	gone(t, ns, "auth-authserver", &autoscalingv2.HorizontalPodAutoscaler{})
	eventually(t, "spec.replicas 5", func() error {
		if n := deploymentReplicas(t, ns); n != 5 {
			return fmt.Errorf("%d replicas", n)
		}
		return nil
	})
	settle(t, op, ns)
}

// TestStaleHandOverStopsTheUnit: a hand-over built from a stale read (the cache still
// shows 3 replicas while the Deployment has 6) is refused by the API server, and the
// unit stops there, so the operator's own apply never drops a field the hand-over
// did not secure (that would reset spec.replicas to 1). The reconcile retries it.
func TestStaleHandOverStopsTheUnit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	stack := sampleStack(ns, "auth")
	stack.Spec.AuthServer.Replicas = ptr.To[int32](6)
	stack.Spec.AuthServer.Autoscaling.Enabled = ptr.To(false)
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	eventually(t, "6 replicas", func() error {
		if n := deploymentReplicas(t, ns); n != 6 {
			return fmt.Errorf("%d replicas", n)
		}
		return nil
	})
	stale := getDeployment(t, ns).DeepCopy()
	stale.Spec.Replicas = ptr.To[int32](3)
	stale.ResourceVersion = "1" // read long ago
	h := replicasHandOver(stale)
	if h == nil {
		t.Fatal("no hand-over for a Deployment whose replicas only the operator owns")
	}
	err := op.reconciler.applyUnit(ctx, stack, unit{handOver: []*unstructured.Unstructured{h}})
	if err == nil {
		t.Fatal("a hand-over from a stale read was accepted; the unit would go on and drop spec.replicas")
	}
	if n := deploymentReplicas(t, ns); n != 6 {
		t.Errorf("replicas = %d after the refused hand-over, want 6", n)
	}
}
