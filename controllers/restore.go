package controllers

// The declared restore (spec.bootstrap.fromBackup): before any authserver pod starts,
// one Job runs `authserver restore postgres --once` into the stack's database
// (controllers/resources/restore.go). Until it succeeded the Deployment and the backup
// CronJobs are not rendered; status.restore and the Restored condition report it, and
// Succeeded is final. See docs/backup-and-restore.md, "Declare a restore".

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// restoreObservation is what one reconcile learned about the declared restore.
type restoreObservation struct {
	declared bool
	status   authv1alpha1.RestoreStatus
	reason   string       // of the Restored condition
	job      *batchv1.Job // to create, or nil
}

// restoring says whether the authserver and the backups must still wait for the restore.
func (o *restoreObservation) restoring() bool {
	return o.declared && o.status.Phase != authv1alpha1.RestoreSucceeded
}

// observeRestore lists the stack's restore Jobs (cached) and their pods (uncached) and
// works out the restore's progress. It runs after observeAuthServer: the Job's name
// hashes the observed Secret values (the pepper among them). A missing private key or
// S3 Secret keeps the restore Pending, without a Job whose pod could not start.
func (r *AuthStackReconciler) observeRestore(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	ro := &obs.restore
	b := stack.Spec.Bootstrap
	if b == nil || b.FromBackup == nil || stack.Spec.Backup == nil {
		return nil
	}
	ro.declared = true
	if p := stack.Status.Restore; p != nil && p.Phase == authv1alpha1.RestoreSucceeded {
		ro.status, ro.reason = *p.DeepCopy(), authv1alpha1.ReasonRestoreSucceeded
		return nil // final: the Jobs are not even listed
	}
	in := r.inputs(stack, obs)
	job := resources.RestoreJob(stack, resources.DefaultBackupSources(stack, in), in)
	if job == nil {
		ro.status = authv1alpha1.RestoreStatus{Phase: authv1alpha1.RestorePending, Message: "the stack has no database URL to restore into"}
		ro.reason = authv1alpha1.ReasonRestorePending
		return nil
	}
	sel := client.MatchingLabels(resources.RestoreJobLabels(stack))
	var jobs batchv1.JobList
	if err := r.List(ctx, &jobs, client.InNamespace(stack.Namespace), sel); err != nil {
		return fmt.Errorf("listing restore Jobs: %w", err)
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(stack.Namespace), sel); err != nil {
		return fmt.Errorf("listing restore pods: %w", err)
	}
	st, reason, create := resources.RestoreProgress(stack.Status.Restore, job.Name, jobs.Items, pods.Items)
	if create {
		missing, err := r.missingRestoreSecret(ctx, stack)
		if err != nil {
			return err
		}
		if missing != "" {
			st.Message, reason, create = missing, authv1alpha1.ReasonSecretNotFound, false
		}
	}
	ro.status, ro.reason = st, reason
	if create {
		ro.job = job
	}
	return nil
}

// missingRestoreSecret checks the Secrets only the restore Job reads: the private key
// (and passphrase), and the source bucket's credentials.
func (r *AuthStackReconciler) missingRestoreSecret(ctx context.Context, stack *authv1alpha1.AuthStack) (string, error) {
	enc := stack.Spec.Backup.Encryption
	var needs []secretNeed
	if k := enc.PrivateKeySecretRef; k != nil {
		needs = append(needs, secretNeed{"spec.backup.encryption.privateKeySecretRef", k.Name, k.Key})
	}
	if p := enc.PassphraseSecretRef; p != nil {
		needs = append(needs, secretNeed{"spec.backup.encryption.passphraseSecretRef", p.Name, p.Key})
	}
	verify := resources.BackupVerifyKeyRef(stack)
	field := "spec.bootstrap.fromBackup.verifyKeySecretRef"
	if stack.Spec.Bootstrap.FromBackup.VerifyKeySecretRef == nil {
		field = "spec.backup (the generated backup signing key)"
	}
	needs = append(needs, secretNeed{field, verify.Name, verify.Key})
	if src := stack.Spec.Bootstrap.FromBackup.Source; src != nil && src.S3.CredentialsSecretRef != nil {
		f, n := "spec.bootstrap.fromBackup.source.s3.credentialsSecretRef", src.S3.CredentialsSecretRef.Name
		needs = append(needs, secretNeed{f, n, "AWS_ACCESS_KEY_ID"}, secretNeed{f, n, "AWS_SECRET_ACCESS_KEY"})
	}
	return r.missingSecretKey(ctx, stack, needs) // backup.go
}

// restoreObjects is the restore's unit: the Job to create, if any (created once,
// never applied again).
func restoreObjects(obs *observation) []unit {
	if !obs.restore.declared {
		return nil
	}
	u := unit{condition: authv1alpha1.ConditionRestored, field: "spec.bootstrap.fromBackup"}
	if obs.restore.job != nil {
		u.create = append(u.create, obs.restore.job)
	}
	return []unit{u}
}

// restoreStatus sets status.restore and the Restored condition (both removed without
// a declared restore).
func restoreStatus(stack *authv1alpha1.AuthStack, obs *observation, st *authv1alpha1.AuthStackStatus, failures []failure) *metav1.Condition {
	ro := &obs.restore
	if !ro.declared {
		st.Restore = nil
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionRestored)
		return nil
	}
	s := ro.status
	st.Restore = &s
	c := condition(authv1alpha1.ConditionRestored, s.Phase == authv1alpha1.RestoreSucceeded, ro.reason, s.Message)
	if f := failureOf(failures, authv1alpha1.ConditionRestored); f != nil {
		c = condition(authv1alpha1.ConditionRestored, false, authv1alpha1.ReasonApplyFailed, f.message())
	}
	setCondition(st, stack.Generation, c)
	return &c
}

// restoreEvents records the restore's transitions: started, succeeded (Normal), failed (Warning).
func (r *AuthStackReconciler) restoreEvents(stack *authv1alpha1.AuthStack, before, after *authv1alpha1.RestoreStatus) {
	if after == nil || (before != nil && before.Phase == after.Phase && before.Job == after.Job) {
		return
	}
	switch after.Phase {
	case authv1alpha1.RestoreRunning:
		r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "RestoreStarted", "Restore", "restoring the database with Job %q", after.Job)
	case authv1alpha1.RestoreSucceeded:
		r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "RestoreSucceeded", "Restore", "restored %s: %s", after.Object, after.Message)
	case authv1alpha1.RestoreFailed:
		r.Recorder.Eventf(stack, nil, corev1.EventTypeWarning, "RestoreFailed", "Restore", "%s", after.Message)
	}
}
