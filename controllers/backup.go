package controllers

// Backups: the reconciler renders one CronJob per kind of backup
// (controllers/resources/backup.go), runs a one-off Job for each new value of
// the auth.leanauth.dev/backup-now annotation, and reports status.backups and
// the BackupsHealthy condition from the backup Jobs and their pods'
// termination messages. See docs/backup-and-restore.md.

import (
	"cmp"
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=list

// backupRecheck is how often a stack with backups is looked at again, so that
// BackupsHealthy turns False when a run is overdue even if nothing changes.
const backupRecheck = 15 * time.Minute

// backupObservation is what one reconcile learned about the backups.
type backupObservation struct {
	kinds []string      // kinds whose CronJob is rendered
	since time.Time     // when backups were turned on (oldest backup CronJob)
	jobs  []batchv1.Job // backup Jobs, scheduled and on-demand
	pods  []corev1.Pod  // their pods
	// missing names a Secret (key) of spec.backup that is not there: the
	// jobs' pods could not start, so BackupsHealthy says so at once.
	missing string
	// signingKey is the signing key's Secret once it exists; signingMissing says
	// it was deleted after the stack had one (backupsigning.go).
	signingKey, signingMissing string
}

// backupObjects renders the backup unit: the CronJobs to apply, the ones to delete, and
// the one-off Jobs the backup-now annotation asks for (created once, never changed: a
// Job's name derives from the annotation value).
func backupObjects(stack *authv1alpha1.AuthStack, in resources.Inputs) []unit {
	u := unit{condition: authv1alpha1.ConditionBackupsHealthy, field: "spec.backup"}
	src := resources.DefaultBackupSources(stack, in)
	apply, remove := resources.BackupCronJobs(stack, src)
	for _, cj := range apply {
		u.desired = append(u.desired, cj)
	}
	for _, name := range remove {
		u.absent = append(u.absent, named(stack, &batchv1.CronJob{}, name))
	}
	for _, job := range resources.OnDemandBackupJobs(stack, src) {
		u.create = append(u.create, job)
	}
	return []unit{u}
}

// observeBackups lists the backup Jobs (cached: the operator watches Jobs) and
// their pods (read uncached, with a label selector).
func (r *AuthStackReconciler) observeBackups(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	bo := &obs.backups
	if stack.Spec.Backup == nil {
		return nil
	}
	bo.kinds = resources.BackupKinds(stack, resources.DefaultBackupSources(stack, resources.Inputs{}))
	missing, err := r.missingBackupSecret(ctx, stack)
	if err != nil {
		return err
	}
	bo.missing = missing
	for _, kind := range bo.kinds {
		cj := &batchv1.CronJob{}
		err := r.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: resources.BackupCronJobName(stack, kind)}, cj)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading backup CronJob: %w", err)
		}
		if err == nil && (bo.since.IsZero() || cj.CreationTimestamp.Time.Before(bo.since)) {
			bo.since = cj.CreationTimestamp.Time
		}
		sel := client.MatchingLabels(resources.BackupJobLabels(stack, kind))
		var jobs batchv1.JobList
		if err := r.List(ctx, &jobs, client.InNamespace(stack.Namespace), sel); err != nil {
			return fmt.Errorf("listing backup Jobs: %w", err)
		}
		bo.jobs = append(bo.jobs, jobs.Items...)
		var pods corev1.PodList
		if err := r.APIReader.List(ctx, &pods, client.InNamespace(stack.Namespace), sel); err != nil {
			return fmt.Errorf("listing backup pods: %w", err)
		}
		bo.pods = append(bo.pods, pods.Items...)
	}
	return nil
}

// missingBackupSecret checks the Secrets spec.backup names (read uncached,
// like every Secret): the public key's key, and both keys of the S3
// credentials. It returns what is missing, for the condition ("" when all is there).
func (r *AuthStackReconciler) missingBackupSecret(ctx context.Context, stack *authv1alpha1.AuthStack) (string, error) {
	b := stack.Spec.Backup
	needs := []secretNeed{{"spec.backup.encryption.publicKeySecretRef", b.Encryption.PublicKeySecretRef.Name, b.Encryption.PublicKeySecretRef.Key}}
	if c := b.Destination.S3.CredentialsSecretRef; c != nil {
		f := "spec.backup.destination.s3.credentialsSecretRef"
		needs = append(needs, secretNeed{f, c.Name, "AWS_ACCESS_KEY_ID"}, secretNeed{f, c.Name, "AWS_SECRET_ACCESS_KEY"})
	}
	return r.missingSecretKey(ctx, stack, needs)
}

// secretNeed is a Secret key a spec field names.
type secretNeed struct{ field, name, key string }

// missingSecretKey reads each Secret (uncached) and says which is missing or lacks
// its key, naming the spec field ("" when all is there).
func (r *AuthStackReconciler) missingSecretKey(ctx context.Context, stack *authv1alpha1.AuthStack, needs []secretNeed) (string, error) {
	for _, n := range needs {
		sec := &corev1.Secret{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: n.name}, sec)
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("Secret %q named by %s does not exist", n.name, n.field), nil
		}
		if err != nil {
			return "", fmt.Errorf("reading Secret %q named by %s: %w", n.name, n.field, err)
		}
		if len(sec.Data[n.key]) == 0 {
			return fmt.Sprintf("Secret %q named by %s has no key %q", n.name, n.field, n.key), nil
		}
	}
	return "", nil
}

// backupStatus sets status.backups and BackupsHealthy (removed without spec.backup).
func backupStatus(stack *authv1alpha1.AuthStack, obs *observation, st *authv1alpha1.AuthStackStatus, failures []failure, now time.Time) {
	bo := &obs.backups
	if stack.Spec.Backup == nil {
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionBackupsHealthy)
		return
	}

	st.Backups = resources.BackupsStatusFromJobs(st.Backups, bo.jobs, bo.pods)
	if bo.signingKey != "" {
		st.Backups.SigningKeySecret = bo.signingKey
	}
	// A backup-now request is handled once its Jobs were created: record it, so that
	// deleting them (by hand, or their TTL) never runs it again.
	if token := stack.Annotations[resources.AnnotationBackupNow]; token != "" && obs.blocker == nil &&
		failureOf(failures, authv1alpha1.ConditionBackupsHealthy) == nil {
		st.Backups.HandledRequest = token
	}
	since := bo.since
	if since.IsZero() {
		since = now
	}
	if f := failureOf(failures, authv1alpha1.ConditionBackupsHealthy); f != nil {
		setCondition(st, stack.Generation, condition(authv1alpha1.ConditionBackupsHealthy, false, authv1alpha1.ReasonApplyFailed, f.message()))
		return
	}
	if missing := cmp.Or(bo.signingMissing, bo.missing); missing != "" && len(bo.kinds) > 0 {
		setCondition(st, stack.Generation, condition(authv1alpha1.ConditionBackupsHealthy, false, authv1alpha1.ReasonSecretNotFound, missing))
		return
	}
	if c, ok := resources.BackupsHealthyCondition(stack, bo.kinds, st.Backups, since, now); ok {
		setCondition(st, stack.Generation, c)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionBackupsHealthy)
	}
}

// stackOfBackupJob maps a backup Job (owned by its CronJob, not by the stack) to its stack.
func stackOfBackupJob(_ context.Context, obj client.Object) []reconcile.Request {
	l := obj.GetLabels()
	switch l[resources.LabelComponent] {
	case resources.ComponentBackupPostgres, resources.ComponentBackupRedis, resources.ComponentBackupVerify:
	default:
		return nil
	}
	if l[resources.LabelInstance] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: l[resources.LabelInstance]}}}
}
