package controllers

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// computeStatus derives the whole status from what was observed and what the API
// server refused. It is pure: the same observation gives the same status, so an
// unchanged stack causes no status write. Each component reports its own conditions
// (authserver.go, datatier.go, backup.go); Ready sums them up.
func computeStatus(stack *authv1alpha1.AuthStack, obs *observation, failures []failure, now time.Time) authv1alpha1.AuthStackStatus {
	st := *stack.Status.DeepCopy()
	st.ObservedGeneration = stack.Generation
	st.URL = resources.PublicURL(stack)
	if obs.blocker == nil {
		st.PepperSecretName = resources.PepperRef(stack).Name
	}

	st.AuthServer = authv1alpha1.ReplicaStatus{}
	if d := obs.authServer.deployment; d != nil {
		st.AuthServer = authv1alpha1.ReplicaStatus{
			Replicas:      d.Status.Replicas,
			ReadyReplicas: d.Status.ReadyReplicas,
			Summary:       fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, d.Status.Replicas),
		}
	}
	dataTierStatus(obs, &st)
	conds := append(authServerConditions(obs, failures), dataTierConditions(stack, obs, failures)...)
	for _, c := range conds {
		setCondition(&st, stack.Generation, c)
	}
	backupStatus(stack, obs, &st, failures, now) // status.backups, BackupsHealthy: backup.go

	ready := condition(authv1alpha1.ConditionReady, true, authv1alpha1.ReasonAllReady, "every component is ready")
	if len(failures) > 0 {
		// Blocked components first: they need a person, the rest only time.
		var blocked []string
		for _, f := range failures {
			blocked = append(blocked, cmp.Or(f.condition, "Ready")+": "+f.message())
		}
		ready = condition(authv1alpha1.ConditionReady, false, authv1alpha1.ReasonApplyFailed, strings.Join(blocked, "; "))
	} else {
		for _, c := range conds {
			if c.Status != metav1.ConditionTrue {
				ready = condition(authv1alpha1.ConditionReady, false, c.Reason, c.Type+": "+c.Message)
				break
			}
		}
	}
	if ready.Status == metav1.ConditionTrue && !rolloutComplete(obs.authServer.deployment) {
		ready = condition(authv1alpha1.ConditionReady, false, authv1alpha1.ReasonRollingUpdate, "the authserver Deployment is rolling out")
	}
	setCondition(&st, stack.Generation, ready)
	return st
}

// failureOf is the first failure reported on the condition typ, or nil.
func failureOf(failures []failure, typ string) *failure {
	for i := range failures {
		if failures[i].condition == typ {
			return &failures[i]
		}
	}
	return nil
}

func condition(typ string, ok bool, reason, message string) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message}
}

// setCondition sets c, keeping its last transition time unless its status changed.
func setCondition(st *authv1alpha1.AuthStackStatus, generation int64, c metav1.Condition) {
	c.ObservedGeneration = generation
	meta.SetStatusCondition(&st.Conditions, c)
}

// rolloutComplete says whether the Deployment runs its latest template everywhere.
func rolloutComplete(d *appsv1.Deployment) bool {
	if d == nil || d.Status.ObservedGeneration < d.Generation {
		return false
	}
	want := d.Status.Replicas
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.UpdatedReplicas == want && d.Status.Replicas == want && d.Status.AvailableReplicas == want
}

// writeStatus writes the status when it changed, and records an Event when Ready flips.
func (r *AuthStackReconciler) writeStatus(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation, failures []failure) error {
	next := computeStatus(stack, obs, failures, time.Now())
	if equality.Semantic.DeepEqual(stack.Status, next) {
		return nil
	}
	before := meta.FindStatusCondition(stack.Status.Conditions, authv1alpha1.ConditionReady)
	patchBase := client.MergeFrom(stack.DeepCopy())
	stack.Status = next
	if err := r.Status().Patch(ctx, stack, patchBase); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	after := meta.FindStatusCondition(next.Conditions, authv1alpha1.ConditionReady)
	if before == nil || before.Status != after.Status {
		eventType := corev1.EventTypeNormal
		if after.Status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(stack, nil, eventType, "Ready"+string(after.Status), "Reconcile", "%s: %s", after.Reason, after.Message)
	}
	return nil
}
