package controllers

// spec.paused: while true the reconciler observes and reports as always but changes no
// child (no apply, no delete, no generated Secret, no monitoring or gateway object);
// the gates are in Reconcile and observeAuthServer. Status says so: Paused True and
// Progressing False, both with reason Paused. See controllers/DESIGN.md, "Pause".

import (
	"k8s.io/apimachinery/pkg/api/meta"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// paused says whether the operator must leave the stack's children alone.
func paused(stack *authv1alpha1.AuthStack) bool { return stack.Spec.Paused }

const pausedMessage = "spec.paused is true: the operator changes no child of the stack until it is false again"

// pauseStatus sets Paused while paused and removes it otherwise (Progressing says
// Paused too: progressingCondition in status.go).
func pauseStatus(stack *authv1alpha1.AuthStack, st *authv1alpha1.AuthStackStatus) {
	if !paused(stack) {
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionPaused)
		return
	}
	setCondition(st, stack.Generation, condition(authv1alpha1.ConditionPaused, true, authv1alpha1.ReasonPaused, pausedMessage))
}
