//go:build e2e

package e2e

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// spec.backup -> one CronJob per kind; the backup-now annotation -> a Job
// that the real Job controller runs (its pod completes under kwok) and whose
// outcome the operator reports in status.backups and BackupsHealthy.
func TestBackupNowRunsAJobAndStatusReflectsIt(t *testing.T) {
	ns := namespace(t, "e2e-backup")
	userSecrets(t, ns)
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "backup-key", Namespace: ns},
		StringData: map[string]string{"public.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n(e2e: the pods are simulated, nothing encrypts)\n-----END PGP PUBLIC KEY BLOCK-----\n"}}
	if err := env.c.Create(ctx(t), key); err != nil {
		t.Fatal(err)
	}
	stack := fullStack(ns, "bk")
	stack.Spec.Backup = &authv1alpha1.BackupSpec{
		Destination: authv1alpha1.BackupDestination{S3: authv1alpha1.S3Destination{Bucket: "auth-backups", Endpoint: "https://s3.example.com", Region: "eu-west-1"}},
		Encryption:  authv1alpha1.BackupEncryption{PublicKeySecretRef: authv1alpha1.SecretKeyRef{Name: "backup-key", Key: "public.asc"}},
	}
	if err := env.c.Create(ctx(t), stack); err != nil {
		t.Fatalf("creating the AuthStack with spec.backup: %v", err)
	}
	stack = waitReady(t, ns, stack.Name, 3*time.Minute)

	var cjs batchv1.CronJobList
	if err := env.c.List(ctx(t), &cjs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, cj := range cjs.Items {
		kinds[cj.Labels[resources.LabelComponent]] = true
		if cj.Spec.Schedule != "0 3 * * *" {
			t.Errorf("CronJob %s schedule %q, want the default 0 3 * * *", cj.Name, cj.Spec.Schedule)
		}
	}
	if !kinds[resources.ComponentBackupPostgres] || !kinds[resources.ComponentBackupRedis] {
		t.Fatalf("backup CronJobs by component: %v, want postgres and redis", kinds)
	}

	// Ask for a backup now.
	updateStack(t, ns, stack.Name, func(s *authv1alpha1.AuthStack) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[resources.AnnotationBackupNow] = "e2e-1"
	})
	pgJob := resources.OnDemandBackupJobName(stack, resources.BackupKindPostgres, "e2e-1")
	job := &batchv1.Job{}
	if err := poll(2*time.Minute, func() (bool, error) {
		if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: pgJob}, job); err != nil {
			return false, nil
		}
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("the on-demand Job %s did not complete: %+v", pgJob, job.Status)
	}
	var last *authv1alpha1.AuthStack
	if err := poll(2*time.Minute, func() (bool, error) {
		last = getStack(t, ns, stack.Name)
		b := last.Status.Backups
		return b != nil && b.Postgres.LastSuccess != nil && b.Postgres.LastSuccess.Job == pgJob, nil
	}); err != nil {
		t.Fatalf("status.backups.postgres.lastSuccess does not name %s: %+v", pgJob, last.Status.Backups)
	}
	c := meta.FindStatusCondition(last.Status.Conditions, authv1alpha1.ConditionBackupsHealthy)
	if c == nil {
		t.Fatalf("no BackupsHealthy condition: %+v", statusOf(last))
	}
	t.Logf("Job %s completed under kwok; status.backups.postgres.lastSuccess = %+v; BackupsHealthy %s (%s)",
		pgJob, *last.Status.Backups.Postgres.LastSuccess, c.Status, c.Reason)

	// The same annotation value never runs again.
	if err := env.c.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: pgJob}, job); err != nil {
		t.Fatal(err)
	}
	uid := job.UID
	time.Sleep(2 * time.Second)
	var jobs batchv1.JobList
	if err := env.c.List(ctx(t), &jobs, client.InNamespace(ns), client.MatchingLabels{resources.LabelComponent: resources.ComponentBackupPostgres}); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		if j.Name == pgJob && j.UID != uid {
			t.Errorf("the Job for backup-now=e2e-1 was recreated")
		}
	}
	if len(jobs.Items) != 1 {
		t.Errorf("%d postgres backup Jobs, want 1", len(jobs.Items))
	}
}
