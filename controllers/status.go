package controllers

import (
	"context"
	"fmt"
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

// computeStatus derives the whole status from what was observed. It is pure: the same
// observation gives the same status, so an unchanged stack causes no status write.
func computeStatus(stack *authv1alpha1.AuthStack, obs *observation, applyErr error) authv1alpha1.AuthStackStatus {
	st := *stack.Status.DeepCopy()
	st.ObservedGeneration = stack.Generation
	st.URL = resources.PublicURL(stack)
	if obs.blocker == nil {
		st.PepperSecretName = resources.PepperRef(stack).Name
	}

	st.AuthServer = authv1alpha1.ReplicaStatus{}
	if d := obs.deployment; d != nil {
		st.AuthServer = authv1alpha1.ReplicaStatus{
			Replicas:      d.Status.Replicas,
			ReadyReplicas: d.Status.ReadyReplicas,
			Summary:       fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, d.Status.Replicas),
		}
	}

	available := authServerAvailable(obs)
	switch {
	case obs.blocker != nil:
		available = condition(authv1alpha1.ConditionAuthServerAvailable, false, obs.blocker.reason, obs.blocker.message)
	case applyErr != nil:
		available = condition(authv1alpha1.ConditionAuthServerAvailable, false, authv1alpha1.ReasonApplyFailed, redactedApplyError(applyErr))
	}
	setCondition(&st, stack.Generation, available)
	dataTierStatus(stack, obs, &st)           // PoolerReady, RedisReady, DatabaseReady: datatier.go
	backupStatus(stack, obs, &st, time.Now()) // status.backups, BackupsHealthy: backup.go

	ready := condition(authv1alpha1.ConditionReady, true, authv1alpha1.ReasonAllReady, "every component is ready")
	for _, c := range st.Conditions {
		// A failed backup does not make the auth tier unready: BackupsHealthy says it.
		if c.Type != authv1alpha1.ConditionReady && c.Type != authv1alpha1.ConditionBackupsHealthy && c.Status != metav1.ConditionTrue {
			ready = condition(authv1alpha1.ConditionReady, false, c.Reason, c.Type+": "+c.Message)
			break
		}
	}
	if ready.Status == metav1.ConditionTrue && !rolloutComplete(obs.deployment) {
		ready = condition(authv1alpha1.ConditionReady, false, authv1alpha1.ReasonRollingUpdate, "the authserver Deployment is rolling out")
	}
	setCondition(&st, stack.Generation, ready)
	return st
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

// authServerAvailable reads the Deployment's own Available condition.
func authServerAvailable(obs *observation) metav1.Condition {
	d := obs.deployment
	if d == nil {
		return condition(authv1alpha1.ConditionAuthServerAvailable, false, authv1alpha1.ReasonProgressing, "the authserver Deployment does not exist yet")
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			if c.Status == corev1.ConditionTrue {
				return condition(authv1alpha1.ConditionAuthServerAvailable, true, authv1alpha1.ReasonAvailable,
					fmt.Sprintf("%d of %d replicas ready", d.Status.ReadyReplicas, d.Status.Replicas))
			}
			return condition(authv1alpha1.ConditionAuthServerAvailable, false, authv1alpha1.ReasonUnavailable, c.Message)
		}
	}
	return condition(authv1alpha1.ConditionAuthServerAvailable, false, authv1alpha1.ReasonProgressing, "waiting for the authserver Deployment to report")
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

// redactedApplyError is the text of an apply error for a condition. API server errors
// name objects and fields, never Secret values (the operator never sends any).
func redactedApplyError(err error) string {
	msg := err.Error()
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	return msg
}

// writeStatus writes the status when it changed, and records an Event when Ready flips.
func (r *AuthStackReconciler) writeStatus(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation, applyErr error) error {
	next := computeStatus(stack, obs, applyErr)
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
