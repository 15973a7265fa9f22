//go:build e2e

package e2e

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// rolledOut waits until the real Deployment controller has finished a
// rollout to the Deployment's current template, and returns the hash of that
// template (the pod-template-hash of its ReplicaSet).
func rolledOut(t *testing.T, ns, name string, replicas int32) (*appsv1.Deployment, string) {
	t.Helper()
	dep := &appsv1.Deployment{}
	hash := ""
	err := poll(3*time.Minute, func() (bool, error) {
		if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
			return false, err
		}
		s := dep.Status
		if s.ObservedGeneration != dep.Generation || s.UpdatedReplicas < replicas || s.AvailableReplicas < replicas || s.Replicas != s.UpdatedReplicas {
			return false, nil
		}
		// The pods that run are all of the new template.
		var rsl appsv1.ReplicaSetList
		if err := env.c.List(ctx(t), &rsl, client.InNamespace(ns), client.MatchingLabels(dep.Spec.Selector.MatchLabels)); err != nil {
			return false, err
		}
		hash = ""
		for _, rs := range rsl.Items {
			if rs.Annotations["deployment.kubernetes.io/revision"] == dep.Annotations["deployment.kubernetes.io/revision"] {
				hash = rs.Labels["pod-template-hash"]
			} else if ptr.Deref(rs.Spec.Replicas, 0) != 0 || rs.Status.Replicas != 0 {
				return false, nil // an old ReplicaSet still has pods
			}
		}
		var pods corev1.PodList
		if err := env.c.List(ctx(t), &pods, client.InNamespace(ns), client.MatchingLabels(dep.Spec.Selector.MatchLabels)); err != nil {
			return false, err
		}
		running := int32(0)
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				return false, nil
			}
			if p.Labels["pod-template-hash"] != hash {
				return false, nil
			}
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return hash != "" && running >= replicas, nil
	})
	if err != nil {
		t.Fatalf("Deployment %s not rolled out: generation %d observed %d, status %+v", name, dep.Generation, dep.Status.ObservedGeneration, dep.Status)
	}
	return dep, hash
}

// spec change -> rolling update by the real Deployment controller; a rotated
// referenced Secret -> a new config hash and another rollout; new HPA bounds
// -> the real HPA controller scales the authserver to the new minimum.
func TestSpecChangeSecretRotationAndHPABounds(t *testing.T) {
	ns := namespace(t, "e2e-roll")
	userSecrets(t, ns)
	stack := fullStack(ns, "roll")
	if err := env.c.Create(ctx(t), stack); err != nil {
		t.Fatal(err)
	}
	stack = waitReady(t, ns, stack.Name, 3*time.Minute)
	name := resources.AuthServerName(stack)
	dep, hash0 := rolledOut(t, ns, name, 3)
	cfg0 := dep.Spec.Template.Annotations[resources.AnnotationConfigHash]

	// 1. Spec change.
	updateStack(t, ns, stack.Name, func(s *authv1alpha1.AuthStack) { s.Spec.AuthServer.LogLevel = "debug" })
	waitReady(t, ns, stack.Name, 3*time.Minute)
	dep, hash1 := rolledOut(t, ns, name, 3)
	if hash1 == hash0 {
		t.Fatalf("logLevel change did not roll the pods (pod-template-hash %s)", hash0)
	}
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "LOG_LEVEL" && e.Value != "debug" {
			t.Errorf("LOG_LEVEL = %q after the change", e.Value)
		}
	}
	t.Logf("spec change rolled %s -> %s", hash0, hash1)

	// 2. Secret rotation.
	smtp := &corev1.Secret{}
	if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: "smtp"}, smtp); err != nil {
		t.Fatal(err)
	}
	smtp.Data["password"] = []byte("rotated-" + time.Now().Format("150405.000"))
	if err := env.c.Update(ctx(t), smtp); err != nil {
		t.Fatal(err)
	}
	if err := poll(2*time.Minute, func() (bool, error) {
		if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
			return false, err
		}
		return dep.Spec.Template.Annotations[resources.AnnotationConfigHash] != cfg0, nil
	}); err != nil {
		t.Fatalf("the rotated SMTP password did not change the pod template's config hash")
	}
	_, hash2 := rolledOut(t, ns, name, 3)
	if hash2 == hash1 {
		t.Fatalf("Secret rotation did not roll the pods")
	}
	t.Logf("Secret rotation rolled %s -> %s", hash1, hash2)

	// 3. HPA bounds: the operator renders them, the real HPA controller enforces the minimum.
	updateStack(t, ns, stack.Name, func(s *authv1alpha1.AuthStack) {
		s.Spec.AuthServer.Autoscaling = authv1alpha1.AutoscalingSpec{Enabled: ptr.To(true), MinReplicas: 5, MaxReplicas: 8,
			TargetCPUUtilization: 70, TargetMemoryUtilization: 80}
	})
	waitReady(t, ns, stack.Name, 3*time.Minute)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: name}, hpa); err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(hpa.Spec.MinReplicas, 0) != 5 || hpa.Spec.MaxReplicas != 8 {
		t.Fatalf("HPA bounds = %v..%d, want 5..8", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if err := poll(3*time.Minute, func() (bool, error) {
		running, _ := podsByComponent(t, ns, stack.Name)
		if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
			return false, err
		}
		return ptr.Deref(dep.Spec.Replicas, 0) == 5 && running[resources.ComponentAuthServer] == 5, nil
	}); err != nil {
		t.Fatalf("the HPA did not scale the authserver to its new minimum 5: replicas %v", dep.Spec.Replicas)
	}
	// The operator leaves replicas to the HPA: it must not fight it back.
	time.Sleep(3 * time.Second)
	if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(dep.Spec.Replicas, 0) != 5 {
		t.Errorf("replicas changed to %v after the HPA set 5", dep.Spec.Replicas)
	}
}
