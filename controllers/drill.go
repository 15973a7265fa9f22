package controllers

// Restore drills: the reconciler renders the drill CronJob
// (controllers/resources/drill.go) and reports status.backups.lastDrill,
// lastSuccessfulDrill and the RestoreVerified condition from the drill Jobs
// and their pods' termination messages, with an Event on each transition.
// See docs/backup-and-restore.md ("Read a drill's result").

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// drillObservation is what one reconcile learned about the restore drills.
type drillObservation struct {
	since   time.Time // when drills were turned on (the CronJob's creation)
	jobs    []batchv1.Job
	pods    []corev1.Pod
	missing string // a Secret (key) the drill needs that is not there
}

// drillObjects renders the drill unit: its CronJob, or its deletion.
func drillObjects(stack *authv1alpha1.AuthStack, in resources.Inputs) []unit {
	u := unit{condition: authv1alpha1.ConditionRestoreVerified, field: "spec.backup.verify"}
	if cj := resources.DrillCronJob(stack, resources.DefaultBackupSources(stack, in)); cj != nil {
		u.desired = append(u.desired, cj)
	} else {
		u.absent = append(u.absent, named(stack, &batchv1.CronJob{}, resources.DrillCronJobName(stack)))
	}
	return []unit{u}
}

// observeDrills lists the drill Jobs (cached) and their pods (uncached, by label).
func (r *AuthStackReconciler) observeDrills(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	do := &obs.drills
	if stack.Spec.Backup == nil || stack.Spec.Backup.Verify == nil {
		return nil
	}
	enc := stack.Spec.Backup.Encryption
	for field, ref := range map[string]*authv1alpha1.SecretKeyRef{
		"spec.backup.encryption.privateKeySecretRef": enc.PrivateKeySecretRef,
		"spec.backup.encryption.passphraseSecretRef": enc.PassphraseSecretRef,
	} {
		if ref == nil {
			continue
		}
		sec := &corev1.Secret{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: ref.Name}, sec)
		switch {
		case apierrors.IsNotFound(err):
			do.missing = fmt.Sprintf("Secret %q named by %s does not exist", ref.Name, field)
		case err != nil:
			return fmt.Errorf("reading Secret %q named by %s: %w", ref.Name, field, err)
		case len(sec.Data[ref.Key]) == 0:
			do.missing = fmt.Sprintf("Secret %q named by %s has no key %q", ref.Name, field, ref.Key)
		}
	}
	cj := &batchv1.CronJob{}
	err := r.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: resources.DrillCronJobName(stack)}, cj)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading the drill CronJob: %w", err)
	}
	if err == nil {
		do.since = cj.CreationTimestamp.Time
	}
	sel := client.MatchingLabels(resources.DrillJobLabels(stack))
	var jobs batchv1.JobList
	if err := r.List(ctx, &jobs, client.InNamespace(stack.Namespace), sel); err != nil {
		return fmt.Errorf("listing drill Jobs: %w", err)
	}
	do.jobs = jobs.Items
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(stack.Namespace), sel); err != nil {
		return fmt.Errorf("listing drill pods: %w", err)
	}
	do.pods = pods.Items
	return nil
}

// drillStatus sets status.backups' drill fields and RestoreVerified (removed
// without spec.backup.verify).
func drillStatus(stack *authv1alpha1.AuthStack, obs *observation, st *authv1alpha1.AuthStackStatus, failures []failure, now time.Time) {
	if stack.Spec.Backup == nil || stack.Spec.Backup.Verify == nil {
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionRestoreVerified)
		return
	}
	do := &obs.drills
	st.Backups = resources.DrillStatusFromJobs(st.Backups, do.jobs, do.pods)
	if f := failureOf(failures, authv1alpha1.ConditionRestoreVerified); f != nil {
		setCondition(st, stack.Generation, condition(authv1alpha1.ConditionRestoreVerified, false, authv1alpha1.ReasonApplyFailed, f.message()))
		return
	}
	if do.missing != "" {
		setCondition(st, stack.Generation, condition(authv1alpha1.ConditionRestoreVerified, false, authv1alpha1.ReasonSecretNotFound, do.missing))
		return
	}
	since := do.since
	if since.IsZero() {
		since = now
	}
	if c, ok := resources.RestoreVerifiedCondition(stack, st.Backups, since, now); ok {
		setCondition(st, stack.Generation, c)
	}
}

// drillEvent records RestoreVerified's transitions: Normal when it turns True,
// a Warning when it turns False or fails for another reason. before is the
// condition before the status write (nil when there was none).
func drillEvent(rec events.EventRecorder, stack *authv1alpha1.AuthStack, before *metav1.Condition, next []metav1.Condition) {
	after := meta.FindStatusCondition(next, authv1alpha1.ConditionRestoreVerified)
	if after == nil || after.Status == metav1.ConditionUnknown ||
		(before != nil && before.Status == after.Status && before.Reason == after.Reason) {
		return
	}
	if after.Status == metav1.ConditionTrue {
		rec.Eventf(stack, nil, corev1.EventTypeNormal, "RestoreVerified", "RestoreDrill", "%s", after.Message)
		return
	}
	rec.Eventf(stack, nil, corev1.EventTypeWarning, "RestoreVerificationFailed", "RestoreDrill", "%s: %s", after.Reason, after.Message)
}
