package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// An operator upgrade with a new --authserver-image: the Follow stack rolls to it, the
// Pinned one keeps its recorded image (and says an update is pending) until annotated.
func TestPinnedStackKeepsOperatorDefaultsAcrossAnUpgrade(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	ctx := context.Background()
	const v1, v2 = "ghcr.io/leanauth/authserver:v1", "ghcr.io/leanauth/authserver:v2"
	withImage := func(img string) func(*AuthStackReconciler) {
		return func(r *AuthStackReconciler) { r.AuthServerImage = img }
	}
	old := startOperator(t, ns, withImage(v1))
	pinned, follow := sampleStack(ns, "auth"), sampleStack(ns, "follow")
	pinned.Spec.UpdatePolicy.OperatorDefaults = authv1alpha1.OperatorDefaultsPinned
	for _, s := range []*authv1alpha1.AuthStack{pinned, follow} {
		if err := k8s.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	image := func(name string) string {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, name+"-authserver"), d); err != nil {
			return "(" + err.Error() + ")"
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}
	stackDefaults := func(name string) authv1alpha1.OperatorDefaultsStatus {
		s := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, name), s); err != nil || s.Status.OperatorDefaults == nil {
			return authv1alpha1.OperatorDefaultsStatus{}
		}
		return *s.Status.OperatorDefaults
	}
	pendingCondition := func(name string) *metav1.Condition {
		s := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, name), s); err != nil {
			return nil
		}
		return meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionOperatorDefaultsPending)
	}
	eventually(t, "both stacks run v1 and record it", func() error {
		for _, n := range []string{"auth", "follow"} {
			if image(n) != v1 || stackDefaults(n).AuthServerImage != v1 {
				return fmt.Errorf("%s: image %s, recorded %+v", n, image(n), stackDefaults(n))
			}
		}
		return nil
	})
	settle(t, old, ns)
	pinnedTemplate := func() string {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), d); err != nil {
			t.Fatal(err)
		}
		tmpl, err := json.Marshal(d.Spec.Template)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(d.Generation, string(tmpl))
	}
	before := pinnedTemplate()
	old.shutdown()

	// The upgraded operator.
	op := startOperator(t, ns, withImage(v2))
	eventually(t, "the Follow stack rolls to v2; the Pinned one reports a pending update", func() error {
		if image("follow") != v2 {
			return fmt.Errorf("follow runs %s", image("follow"))
		}
		if d := stackDefaults("auth"); !d.Pending || d.AuthServerImage != v1 {
			return fmt.Errorf("pinned records %+v", d)
		}
		if c := pendingCondition("auth"); c == nil || c.Status != metav1.ConditionTrue || c.Reason != authv1alpha1.ReasonNewerOperatorDefaults ||
			!strings.Contains(c.Message, "authserver image "+v1+", the operator's "+v2) || !strings.Contains(c.Message, authv1alpha1.AnnotationAdoptOperatorDefaults) {
			return fmt.Errorf("OperatorDefaultsPending %+v", c)
		}
		if c := pendingCondition("follow"); c != nil {
			return fmt.Errorf("a Follow stack has OperatorDefaultsPending %+v", c)
		}
		return nil
	})
	settle(t, op, ns)
	w := op.writes.count()
	for range 10 {
		reconcileNow(t, op, ns)
	}
	if d := op.writes.count() - w; d != 0 {
		t.Errorf("10 no-op reconciles of the pinned stack sent %d writes", d)
	}
	if after := pinnedTemplate(); after != before {
		t.Errorf("the pinned stack's Deployment template changed with the operator:\n%s\n%s", before, after)
	}

	// The stack opts in.
	editStack(t, ns, "auth", func(s *authv1alpha1.AuthStack) {
		s.Annotations = map[string]string{authv1alpha1.AnnotationAdoptOperatorDefaults: "2026-11-29"}
	})
	eventually(t, "the pinned stack adopts v2", func() error {
		if _, err := op.reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: key(ns, "auth")}); err != nil {
			return err
		}
		if d := stackDefaults("auth"); image("auth") != v2 || d.Pending || d.HandledRequest != "2026-11-29" || d.AuthServerImage != v2 {
			return fmt.Errorf("image %s, recorded %+v", image("auth"), d)
		}
		if c := pendingCondition("auth"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonOperatorDefaultsCurrent {
			return fmt.Errorf("OperatorDefaultsPending %+v", c)
		}
		return nil
	})
	settle(t, op, ns) // handled once: the annotation left in place changes nothing more
}

func TestChooseDefaults(t *testing.T) {
	cur := authv1alpha1.OperatorDefaultsStatus{AuthServerImage: "a:2", PgBouncerImage: "p:1", RedisImage: "r:1"}
	old := authv1alpha1.OperatorDefaultsStatus{AuthServerImage: "a:1", PgBouncerImage: "p:1", RedisImage: "r:1", HandledRequest: "x"}
	stack := func(policy string, paused bool, adopt string, rec *authv1alpha1.OperatorDefaultsStatus) *authv1alpha1.AuthStack {
		s := &authv1alpha1.AuthStack{}
		s.Spec.UpdatePolicy.OperatorDefaults, s.Spec.Paused, s.Status.OperatorDefaults = policy, paused, rec
		if adopt != "" {
			s.Annotations = map[string]string{authv1alpha1.AnnotationAdoptOperatorDefaults: adopt}
		}
		return s
	}
	pending := old
	pending.Pending = true
	adopted := cur
	adopted.HandledRequest = "y"
	followed := cur
	followed.HandledRequest = "x"
	for name, tc := range map[string]struct {
		stack *authv1alpha1.AuthStack
		want  authv1alpha1.OperatorDefaultsStatus
	}{
		"follow":                     {stack("Follow", false, "", &old), followed},
		"pinned, nothing recorded":   {stack("Pinned", false, "", nil), cur},
		"pinned keeps the recorded":  {stack("Pinned", false, "", &old), pending},
		"pinned, handled annotation": {stack("Pinned", false, "x", &old), pending},
		"pinned, new annotation":     {stack("Pinned", false, "y", &old), adopted},
		"paused follow keeps":        {stack("Follow", true, "", &old), pending},
		"paused pinned waits":        {stack("Pinned", true, "y", &old), pending},
	} {
		if got := chooseDefaults(tc.stack, cur); got != tc.want {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
	}
}

// TestDocsOperatorDefaultsAndPause: docs/operations.md names the field values, the
// annotation and the conditions the code uses.
func TestDocsOperatorDefaultsAndPause(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(raw)), " ")
	for _, claim := range []string{
		"`spec.updatePolicy.operatorDefaults: " + authv1alpha1.OperatorDefaultsPinned + "`",
		"With `" + authv1alpha1.OperatorDefaultsFollow + "` (the default)",
		authv1alpha1.AnnotationAdoptOperatorDefaults + `="$(date`,
		"`" + authv1alpha1.ConditionPaused + "` is True and `" + authv1alpha1.ConditionProgressing + "` is False, both with reason `" + authv1alpha1.ReasonPaused + "`",
	} {
		if !strings.Contains(doc, claim) {
			t.Errorf("docs/operations.md no longer says %q", claim)
		}
	}
}
