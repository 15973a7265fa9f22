package controllers

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// editStack changes the AuthStack name in ns with edit (retried on conflict).
func editStack(t *testing.T, ns, name string, edit func(*authv1alpha1.AuthStack)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &authv1alpha1.AuthStack{}
		if err := k8s.Get(context.Background(), key(ns, name), s); err != nil {
			return err
		}
		edit(s)
		return k8s.Update(context.Background(), s)
	})
	if err != nil {
		t.Fatalf("editing AuthStack %s: %v", name, err)
	}
}

// waitPaused waits until the status of stack name reports the pause (want) at its generation.
func waitPaused(t *testing.T, ns, name string, want bool) {
	t.Helper()
	eventually(t, fmt.Sprintf("status of %s says paused=%v", name, want), func() error {
		s := &authv1alpha1.AuthStack{}
		if err := k8s.Get(context.Background(), key(ns, name), s); err != nil {
			return err
		}
		if s.Status.ObservedGeneration != s.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", s.Status.ObservedGeneration, s.Generation)
		}
		p := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionPaused)
		prog := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionProgressing)
		switch {
		case want && (p == nil || p.Status != metav1.ConditionTrue || p.ObservedGeneration != s.Generation):
			return fmt.Errorf("Paused %+v", p)
		case want && (prog == nil || prog.Status != metav1.ConditionFalse || prog.Reason != authv1alpha1.ReasonPaused):
			return fmt.Errorf("Progressing %+v", prog)
		case !want && p != nil:
			return fmt.Errorf("Paused condition still there: %+v", p)
		case !want && prog != nil && prog.Reason == authv1alpha1.ReasonPaused:
			return fmt.Errorf("Progressing %+v", prog)
		}
		return nil
	})
}

func TestPauseChangesNothingAndResumeConverges(t *testing.T) {
	t.Parallel()
	ns, op, _ := setup(t)
	ctx := context.Background()
	getDeployment(t, ns)
	settle(t, op, ns)

	editStack(t, ns, "auth", func(s *authv1alpha1.AuthStack) { s.Spec.Paused = true })
	waitPaused(t, ns, "auth", true)

	// Paused: a spec change (an env value, the Ingress turned off) and a hand edit.
	editStack(t, ns, "auth", func(s *authv1alpha1.AuthStack) {
		s.Spec.AuthServer.LogLevel = "debug"
		s.Spec.Ingress.Enabled = false
	})
	handEdit(t, key(ns, "auth-authserver"), &appsv1.Deployment{}, func(obj client.Object) {
		obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Image = "example.com/hand-edited:1"
	})
	waitPaused(t, ns, "auth", true) // the reconciler saw the new generation
	settle(t, op, ns)
	before := op.writes.count()
	for range 10 {
		reconcileNow(t, op, ns)
	}
	if d := op.writes.count() - before; d != 0 {
		t.Errorf("10 reconciles of a paused stack sent %d writes, want 0", d)
	}
	dep := getDeployment(t, ns)
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != "example.com/hand-edited:1" {
		t.Errorf("paused, the hand-edited image was changed to %q", c.Image)
	}
	if e, _ := envValue(c, "LOG_LEVEL"); e.Value == "debug" {
		t.Error("paused, the spec change reached the Deployment")
	}
	if err := k8s.Get(ctx, key(ns, "auth-authserver"), &networkingv1.Ingress{}); err != nil {
		t.Errorf("paused, the Ingress the spec turned off was touched: %v", err)
	}

	// A stack created paused gets nothing, not even its generated pepper.
	fresh := sampleStack(ns, "fresh")
	fresh.Spec.Paused = true
	if err := k8s.Create(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := op.reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: key(ns, "fresh")}); err != nil {
		t.Fatalf("reconciling a stack created paused: %v", err)
	}
	waitPaused(t, ns, "fresh", true)
	for name, obj := range map[string]client.Object{"fresh-pepper": &corev1.Secret{}, "fresh-authserver": &appsv1.Deployment{}} {
		if err := k8s.Get(ctx, key(ns, name), obj); !apierrors.IsNotFound(err) {
			t.Errorf("a stack created paused has %T %s (err %v)", obj, name, err)
		}
	}

	// Resumed: everything converges.
	editStack(t, ns, "auth", func(s *authv1alpha1.AuthStack) { s.Spec.Paused = false })
	waitPaused(t, ns, "auth", false)
	eventually(t, "the resumed stack converges", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), d); err != nil {
			return err
		}
		c := d.Spec.Template.Spec.Containers[0]
		if c.Image != testImage {
			return fmt.Errorf("image %q", c.Image)
		}
		if e, _ := envValue(c, "LOG_LEVEL"); e.Value != "debug" {
			return fmt.Errorf("LOG_LEVEL %q", e.Value)
		}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), &networkingv1.Ingress{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the Ingress is still there (err %v)", err)
		}
		return nil
	})
	editStack(t, ns, "fresh", func(s *authv1alpha1.AuthStack) { s.Spec.Paused = false })
	getPepperNamed(t, ns, "fresh-pepper")
}

func getPepperNamed(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, name+" exists", func() error { return k8s.Get(context.Background(), key(ns, name), &corev1.Secret{}) })
}

// TestPausedStackGeneratesNoPepperVersion: a rotation asked for while paused generates
// no pepper Secret (pause.go: no generated Secret while paused) and resuming does.
func TestPausedStackGeneratesNoPepperVersion(t *testing.T) {
	t.Parallel()
	ns, op, _ := setup(t)
	ctx := context.Background()
	getDeployment(t, ns)
	settle(t, op, ns)

	editStack(t, ns, "auth", func(s *authv1alpha1.AuthStack) { s.Spec.Paused = true })
	waitPaused(t, ns, "auth", true)
	editStack(t, ns, "auth", func(s *authv1alpha1.AuthStack) {
		s.Spec.PepperRotation = &authv1alpha1.PepperRotationSpec{Version: 2}
	})
	waitPaused(t, ns, "auth", true)
	reconcileNow(t, op, ns)
	if err := k8s.Get(ctx, key(ns, "auth-pepper-v2"), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("paused, the operator generated the pepper Secret auth-pepper-v2 (err %v)", err)
	}

	editStack(t, ns, "auth", func(s *authv1alpha1.AuthStack) { s.Spec.Paused = false })
	getPepperNamed(t, ns, "auth-pepper-v2")
}
