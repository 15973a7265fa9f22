package controllers

// Operator defaults (spec.updatePolicy, status.operatorDefaults): which of the operator's
// default images a stack is rendered with. Follow takes the running operator's; Pinned
// keeps the recorded ones until the stack is annotated to adopt the new ones. See
// controllers/DESIGN.md, "Operator upgrades and pod rollouts".

import (
	"cmp"

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
