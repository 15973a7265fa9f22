package controllers

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// TestPepperMismatchIsReported: when an authserver pod's migrate init container exits
// with the pepper-mismatch code (what `authserver migrate` does on data hashed with
// another pepper; authserver/app/pepper_test.go), the stack says PepperMismatch with
// the container's message, writes nothing more at rest, and recovers once the pods start.
func TestPepperMismatchIsReported(t *testing.T) {
	t.Parallel()
	ns, op, stack := setup(t)
	ctx := context.Background()
	getDeployment(t, ns)
	markDeploymentAvailable(t, ns, resources.AuthServerName(stack))
	waitCondition(t, ns, authv1alpha1.ConditionAuthServerAvailable, metav1.ConditionTrue, authv1alpha1.ReasonAvailable)

	// The pod the Deployment controller would make (envtest runs none), and its status.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "auth-authserver-6d5f7c9b8-x2x9z", Namespace: ns,
			Labels: resources.Labels(stack, resources.ComponentAuthServer),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet",
				Name: "auth-authserver-6d5f7c9b8", UID: "0b6a4c8e-1d2f-4a3b-9c5d-7e8f9a0b1c2d", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: resources.MigrateContainerName, Image: testImage}},
			Containers:     []corev1.Container{{Name: resources.ComponentAuthServer, Image: testImage}},
		},
	}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	const msg = `pepper mismatch: the stored password hashes use pepper id(s) AAAAAAAA, but the pepper in Secret "auth-pepper" has id(s) BBBBBBBB`
	setMigrateState := func(st corev1.ContainerStatus) {
		t.Helper()
		st.Name, st.Image = resources.MigrateContainerName, testImage
		pod.Status = corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{st}}
		if err := k8s.Status().Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	setMigrateState(corev1.ContainerStatus{
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: resources.PepperMismatchExitCode, Reason: "Error", Message: msg}},
		RestartCount: 3,
	})
	c := waitCondition(t, ns, authv1alpha1.ConditionAuthServerAvailable, metav1.ConditionFalse, authv1alpha1.ReasonPepperMismatch)
	if !strings.Contains(c.Message, msg) {
		t.Errorf("AuthServerAvailable message %q lacks the pod's %q", c.Message, msg)
	}
	ready := waitCondition(t, ns, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonPepperMismatch)
	if !strings.Contains(ready.Message, `Secret "auth-pepper"`) {
		t.Errorf("Ready message %q does not name the Secret", ready.Message)
	}
	settle(t, op, ns)
	before := op.writes.count()
	for range 10 {
		reconcileNow(t, op, ns)
	}
	if d := op.writes.count() - before; d != 0 {
		t.Errorf("10 reconciles of a stack with a pepper mismatch sent %d writes", d)
	}

	// The right pepper restored: the next run of the init container succeeds.
	setMigrateState(corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}})
	waitCondition(t, ns, authv1alpha1.ConditionAuthServerAvailable, metav1.ConditionTrue, authv1alpha1.ReasonAvailable)
}
