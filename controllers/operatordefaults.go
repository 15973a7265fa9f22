package controllers

// Operator defaults (spec.updatePolicy, status.operatorDefaults): which of the operator's
// default images a stack is rendered with. Follow takes the running operator's; Pinned
// keeps the recorded ones until the stack is annotated to adopt the new ones. See
// controllers/DESIGN.md, "Operator upgrades and pod rollouts".

import (
	"cmp"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// currentDefaults are the defaults of the running operator (its flags, else the builders').
func (r *AuthStackReconciler) currentDefaults() authv1alpha1.OperatorDefaultsStatus {
	return authv1alpha1.OperatorDefaultsStatus{
		AuthServerImage: r.AuthServerImage,
		PgBouncerImage:  cmp.Or(r.PgBouncerImage, resources.DefaultPgBouncerImage),
		RedisImage:      cmp.Or(r.RedisImage, resources.DefaultRedisImage),
	}
}

// chooseDefaults is what the stack renders with, and records in status. Pure.
//   - Follow: the current defaults.
//   - Pinned: the recorded ones (pending when they differ from the current), unless none
//     are recorded yet or the adopt annotation carries a value not handled yet.
//   - Paused: the recorded ones, as the children are not re-rendered.
func chooseDefaults(stack *authv1alpha1.AuthStack, current authv1alpha1.OperatorDefaultsStatus) authv1alpha1.OperatorDefaultsStatus {
	rec := stack.Status.OperatorDefaults
	handled := ""
	if rec != nil {
		handled = rec.HandledRequest
	}
	pinned := stack.Spec.UpdatePolicy.OperatorDefaults == authv1alpha1.OperatorDefaultsPinned
	request := stack.Annotations[authv1alpha1.AnnotationAdoptOperatorDefaults]
	if pinned && request != "" && request != handled && !paused(stack) {
		handled = request // adopt now
	} else if rec != nil && rec.AuthServerImage+rec.PgBouncerImage+rec.RedisImage != "" && (pinned || paused(stack)) {
		used := *rec
		used.Pending = !sameImages(used, current)
		return used
	}
	current.HandledRequest = handled
	return current
}

func sameImages(a, b authv1alpha1.OperatorDefaultsStatus) bool {
	return a.AuthServerImage == b.AuthServerImage && a.PgBouncerImage == b.PgBouncerImage && a.RedisImage == b.RedisImage
}

// operatorDefaultsStatus sets OperatorDefaultsPending on a Pinned stack (removed
// otherwise): which recorded defaults differ from the running operator's (current),
// and how to adopt them.
func operatorDefaultsStatus(stack *authv1alpha1.AuthStack, used, current authv1alpha1.OperatorDefaultsStatus, st *authv1alpha1.AuthStackStatus) {
	if stack.Spec.UpdatePolicy.OperatorDefaults != authv1alpha1.OperatorDefaultsPinned {
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionOperatorDefaultsPending)
		return
	}
	var diffs []string
	for _, d := range []struct{ name, used, cur string }{
		{"authserver", used.AuthServerImage, current.AuthServerImage},
		{"pgbouncer", used.PgBouncerImage, current.PgBouncerImage},
		{"redis", used.RedisImage, current.RedisImage},
	} {
		if d.used != d.cur {
			diffs = append(diffs, fmt.Sprintf("%s image %s, the operator's %s", d.name, d.used, d.cur))
		}
	}
	c := condition(authv1alpha1.ConditionOperatorDefaultsPending, false, authv1alpha1.ReasonOperatorDefaultsCurrent,
		"the stack renders with the running operator's defaults")
	if used.Pending && len(diffs) > 0 {
		c = condition(authv1alpha1.ConditionOperatorDefaultsPending, true, authv1alpha1.ReasonNewerOperatorDefaults,
			"pinned: "+strings.Join(diffs, "; ")+"; to roll the pods to them, annotate the AuthStack "+
				authv1alpha1.AnnotationAdoptOperatorDefaults+"=<any new value>")
	}
	setCondition(st, stack.Generation, c)
}
