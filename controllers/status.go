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
	"k8s.io/utils/ptr"
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
	st.OperatorDefaults = &obs.defaults                                   // operatordefaults.go
	operatorDefaultsStatus(stack, obs.defaults, obs.currentDefaults, &st) // OperatorDefaultsPending: operatordefaults.go
	conds := append(authServerConditions(stack, obs, failures), dataTierConditions(stack, obs, failures)...)
	for _, c := range conds {
		setCondition(&st, stack.Generation, c)
	}
	backupStatus(stack, obs, &st, failures, now)                 // status.backups, BackupsHealthy: backup.go
	drillStatus(stack, obs, &st, failures, now)                  // status.backups.lastDrill, RestoreVerified: drill.go
	pepperStatus(stack, obs, &st)                                // status.pepper, PepperRotated: pepperrotation.go
	rotation := dbRotationStatus(stack, obs, &st)                // status.databasePasswordRotation: dbrotation.go
	if c := restoreStatus(stack, obs, &st, failures); c != nil { // status.restore, Restored: restore.go
		conds = append([]metav1.Condition{*c}, conds...) // first: it explains the others
	}

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
	setCondition(&st, stack.Generation, ready)
	setCondition(&st, stack.Generation, progressingCondition(stack, obs))
	// GatewayRouteReady never decides Ready, but counts for Degraded (gateway.go).
	if gw := gatewayCondition(stack, obs, failures); gw != nil {
		setCondition(&st, stack.Generation, *gw)
		conds = append(conds, *gw)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionGatewayRouteReady)
	}
	if rotation != nil { // never decides Ready; a failed step is Degraded
		conds = append(conds, *rotation)
	}
	setCondition(&st, stack.Generation, degradedCondition(failures, conds))
	pauseStatus(stack, &st) // pause.go
	return st
}

// progressingCondition is True while a workload rolls out or scales (kstatus'
// Progressing): it never decides Ready.
func progressingCondition(stack *authv1alpha1.AuthStack, obs *observation) metav1.Condition {
	if paused(stack) { // pause.go
		return condition(authv1alpha1.ConditionProgressing, false, authv1alpha1.ReasonPaused, pausedMessage)
	}
	var moving []string
	for _, w := range []struct {
		name string
		obj  client.Object
	}{{"authserver", obs.authServer.deployment}, {"pgbouncer", obs.dataTier.pooler}, {"Redis", obs.dataTier.redis}, {"PostgreSQL", obs.dataTier.postgres}} {
		if msg := rollingOut(w.obj); msg != "" {
			moving = append(moving, w.name+": "+msg)
		}
	}
	if s := obs.dbRotation.status; s != nil && s.Phase != authv1alpha1.DatabaseRotationComplete {
		moving = append(moving, "database password rotation: "+s.Phase) // between its rolls too (dbrotation.go)
	}
	if len(moving) == 0 {
		return condition(authv1alpha1.ConditionProgressing, false, authv1alpha1.ReasonRolledOut, "every workload runs its latest spec at its count")
	}
	return condition(authv1alpha1.ConditionProgressing, true, authv1alpha1.ReasonProgressing, strings.Join(moving, "; "))
}

// rollingOut says what a Deployment or StatefulSet is still doing ("" when nothing).
func rollingOut(obj client.Object) string {
	var gen, observed int64
	var want, updated, current, ready int32
	switch w := obj.(type) {
	case *appsv1.Deployment:
		if w == nil {
			return ""
		}
		gen, observed, want = w.Generation, w.Status.ObservedGeneration, ptr.Deref(w.Spec.Replicas, 1)
		updated, current, ready = w.Status.UpdatedReplicas, w.Status.Replicas, w.Status.AvailableReplicas
	case *appsv1.StatefulSet:
		if w == nil {
			return ""
		}
		gen, observed, want = w.Generation, w.Status.ObservedGeneration, ptr.Deref(w.Spec.Replicas, 1)
		updated, current, ready = w.Status.UpdatedReplicas, w.Status.Replicas, w.Status.ReadyReplicas
	default:
		return ""
	}
	switch {
	case observed < gen:
		return "waiting for its controller to see the latest spec"
	case updated < want || current > updated:
		return fmt.Sprintf("rolling out, %d of %d pods updated", updated, want)
	case ready != want:
		return fmt.Sprintf("scaling, %d of %d pods ready", ready, want)
	}
	return ""
}

// errorReasons are the reasons of conditions that need a person, not time.
var errorReasons = map[string]bool{
	authv1alpha1.ReasonApplyFailed: true, authv1alpha1.ReasonSecretNotFound: true, authv1alpha1.ReasonSecretKeyMissing: true,
	authv1alpha1.ReasonInvalidURL: true, authv1alpha1.ReasonInvalidPepper: true, authv1alpha1.ReasonPepperMissing: true,
	authv1alpha1.ReasonPepperMismatch: true, authv1alpha1.ReasonGatewayAPINotServed: true, authv1alpha1.ReasonRouteNotAccepted: true,
	authv1alpha1.ReasonRestoreFailed: true, authv1alpha1.ReasonTargetNotEmpty: true,
	authv1alpha1.ReasonBackupNotAuthentic: true, authv1alpha1.ReasonBackupTooLarge: true, authv1alpha1.ReasonNewestBackupMissing: true,
	authv1alpha1.ReasonClusterNotFound: true, authv1alpha1.ReasonCloudNativePGNotServed: true,
	authv1alpha1.ReasonRotationFailed: true,
}

// degradedCondition is True when something needs a person: a blocker, a refused apply,
// an unusable Secret (kstatus' Stalled; Argo CD's Degraded).
func degradedCondition(failures []failure, conds []metav1.Condition) metav1.Condition {
	var errs []string
	reason := ""
	for _, c := range conds {
		if c.Status != metav1.ConditionTrue && errorReasons[c.Reason] {
			reason = cmp.Or(reason, c.Reason)
			errs = append(errs, c.Type+": "+c.Message)
		}
	}
	for _, f := range failures {
		if f.condition == "" || f.condition == authv1alpha1.ConditionBackupsHealthy {
			reason = cmp.Or(reason, authv1alpha1.ReasonApplyFailed)
			errs = append(errs, f.message())
		}
	}
	if len(errs) == 0 {
		return condition(authv1alpha1.ConditionDegraded, false, authv1alpha1.ReasonNoErrors, "nothing needs a person")
	}
	return condition(authv1alpha1.ConditionDegraded, true, reason, strings.Join(errs, "; "))
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

// writeStatus writes the status when it changed, and records an Event when Ready flips.
func (r *AuthStackReconciler) writeStatus(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation, failures []failure) error {
	next := computeStatus(stack, obs, failures, time.Now())
	if equality.Semantic.DeepEqual(stack.Status, next) {
		return nil
	}
	before := meta.FindStatusCondition(stack.Status.Conditions, authv1alpha1.ConditionReady)
	restoreBefore := stack.Status.Restore
	degradedBefore := meta.FindStatusCondition(stack.Status.Conditions, authv1alpha1.ConditionDegraded)
	verifiedBefore := meta.FindStatusCondition(stack.Status.Conditions, authv1alpha1.ConditionRestoreVerified)
	patchBase := client.MergeFrom(stack.DeepCopy())
	stack.Status = next
	if err := r.Status().Patch(ctx, stack, patchBase); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	r.restoreEvents(stack, restoreBefore, next.Restore) // restore.go
	// Events on transitions only: Ready's are Normal, a Warning only when something
	// needs a person (Degraded turns True).
	after := meta.FindStatusCondition(next.Conditions, authv1alpha1.ConditionReady)
	if before == nil || before.Status != after.Status {
		r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "Ready"+string(after.Status), "Reconcile", "%s: %s", after.Reason, after.Message)
	}
	if d := meta.FindStatusCondition(next.Conditions, authv1alpha1.ConditionDegraded); d.Status == metav1.ConditionTrue &&
		(degradedBefore == nil || degradedBefore.Status != metav1.ConditionTrue || degradedBefore.Message != d.Message) {
		r.Recorder.Eventf(stack, nil, corev1.EventTypeWarning, d.Reason, "Reconcile", "%s", d.Message)
	}
	drillEvent(r.Recorder, stack, verifiedBefore, next.Conditions) // drill.go
	return nil
}
