package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/backup/result"
	"github.com/leanauth/authstack/controllers/resources"
)

func restoreJobs(t *testing.T, ns string) []batchv1.Job {
	t.Helper()
	var list batchv1.JobList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns),
		client.MatchingLabels{resources.LabelComponent: resources.ComponentRestore}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func restored(ns string) (*metav1.Condition, *authv1alpha1.AuthStack, error) {
	var s authv1alpha1.AuthStack
	if err := k8s.Get(context.Background(), key(ns, "auth"), &s); err != nil {
		return nil, nil, err
	}
	return meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionRestored), &s, nil
}

func hasEvent(ns, reason, typ string) error {
	var list eventsv1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, e := range list.Items {
		if e.Reason == reason && e.Type == typ && e.Regarding.Name == "auth" {
			return nil
		}
	}
	return fmt.Errorf("no %s event %s among %d", typ, reason, len(list.Items))
}

// deleteJob deletes a Job and its pod (envtest runs no garbage collector).
func deleteJob(t *testing.T, ns string, job *batchv1.Job) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-pod", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
}

func absent(ns, name string, obj client.Object) error {
	err := k8s.Get(context.Background(), key(ns, name), obj)
	if err == nil {
		return fmt.Errorf("%s exists", name)
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// createBackupSecrets creates the Secrets a stack with backups, a drill and a restore
// names (withBackupSpec, and the private key as "backup-private"/"private.asc"):
// placeholders, since no Job runs on the API server alone.
func createBackupSecrets(t *testing.T, ns string) {
	t.Helper()
	for name, data := range map[string]map[string]string{
		"backup-key":     {"public.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----"},
		"backup-private": {"private.asc": "-----BEGIN PGP PRIVATE KEY BLOCK-----"},
		"s3":             {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3-secret"},
	} {
		if err := k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeclaredRestoreRunsOnceBeforeTheAuthServer: the restore Job comes first, the
// authserver Deployment and the backup CronJobs only once it succeeded; a refusal is
// reported with the command's message and not retried until the Job is deleted; a
// success is final (a deleted Job or a new operator never runs it again); a lost
// status runs a Job that finds its own marker.
func TestDeclaredRestoreRunsOnceBeforeTheAuthServer(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	ctx := context.Background()
	createBackupSecrets(t, ns)
	op := startOperator(t, ns)
	stack := withBackupSpec(sampleStack(ns, "auth"))
	stack.Spec.Backup.Encryption.PrivateKeySecretRef = &authv1alpha1.SecretKeyRef{Name: "backup-private", Key: "private.asc"}
	stack.Spec.Bootstrap = &authv1alpha1.BootstrapSpec{FromBackup: &authv1alpha1.FromBackupSpec{}}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}

	// The Job first; no authserver, no backups.
	eventually(t, "one restore Job", func() error {
		if jobs := restoreJobs(t, ns); len(jobs) != 1 {
			return fmt.Errorf("%d restore Jobs", len(jobs))
		}
		return nil
	})
	job := restoreJobs(t, ns)[0]
	if got := job.Spec.Template.Spec.Containers[0].Args; strings.Join(got, " ") != "restore postgres --once" {
		t.Errorf("args %v", got)
	}
	reconcileNow(t, op, ns)
	eventually(t, "Restored=False, authserver waiting", func() error {
		c, s, err := restored(ns)
		if err != nil {
			return err
		}
		if c == nil || c.Status != metav1.ConditionFalse || s.Status.Restore == nil || s.Status.Restore.Job != job.Name {
			return fmt.Errorf("condition %+v, status %+v", c, s.Status.Restore)
		}
		if a := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionAuthServerAvailable); a == nil || a.Reason != authv1alpha1.ReasonWaitingForRestore {
			return fmt.Errorf("AuthServerAvailable %+v", a)
		}
		if r := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionReady); r == nil || r.Status != metav1.ConditionFalse {
			return fmt.Errorf("Ready %+v", r)
		}
		return nil
	})
	for name, obj := range map[string]client.Object{"auth-authserver": &appsv1.Deployment{}, "auth-backup-postgres": &batchv1.CronJob{}, "auth-backup-redis": &batchv1.CronJob{}} {
		if err := absent(ns, name, obj); err != nil {
			t.Fatalf("before the restore: %v", err)
		}
	}

	// Refused: the command's message (which Secret) reaches status, Degraded, a Warning event.
	mismatch := `backup prod/postgres/20261128T030000Z.dump.gz.gpg, nothing restored: pepper mismatch: the stored password hashes use pepper id(s) u6ZFWmC+, but the pepper in Secret "auth-pepper" has id(s) dhR0gNaQ`
	finishJob(t, ns, &job, false, string(result.Result{Kind: "postgres", Object: "prod/postgres/20261128T030000Z.dump.gz.gpg",
		Reason: result.RestorePepperMismatch, Error: mismatch}.Line()))
	eventually(t, "Restored=False PepperMismatch", func() error {
		c, s, err := restored(ns)
		if err != nil {
			return err
		}
		if c == nil || c.Reason != authv1alpha1.ReasonPepperMismatch || !strings.Contains(c.Message, `Secret "auth-pepper"`) ||
			s.Status.Restore.Phase != authv1alpha1.RestoreFailed || s.Status.Restore.CompletionTime == nil {
			return fmt.Errorf("condition %+v, status %+v", c, s.Status.Restore)
		}
		if d := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionDegraded); d == nil || d.Status != metav1.ConditionTrue {
			return fmt.Errorf("Degraded %+v", d)
		}
		return hasEvent(ns, "RestoreFailed", corev1.EventTypeWarning)
	})
	for range 3 {
		reconcileNow(t, op, ns)
	}
	if jobs := restoreJobs(t, ns); len(jobs) != 1 {
		t.Fatalf("a failed restore was retried on its own: %d Jobs", len(jobs))
	}
	if err := absent(ns, "auth-authserver", &appsv1.Deployment{}); err != nil {
		t.Fatalf("after a refusal: %v", err)
	}

	// Deleting the failed Job retries; this time it succeeds.
	deleteJob(t, ns, &job)
	eventually(t, "a new restore Job", func() error {
		jobs := restoreJobs(t, ns)
		if len(jobs) != 1 || jobs[0].UID == job.UID {
			return fmt.Errorf("%d Jobs", len(jobs))
		}
		job = jobs[0]
		return nil
	})
	finishJob(t, ns, &job, true, string(result.Result{Kind: "postgres", OK: true, Object: "prod/postgres/20261128T030000Z.dump.gz.gpg"}.Line()))
	eventually(t, "Restored=True, then the authserver and the backups", func() error {
		c, s, err := restored(ns)
		if err != nil {
			return err
		}
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != authv1alpha1.ReasonRestoreSucceeded || s.Status.Restore == nil ||
			s.Status.Restore.Object != "prod/postgres/20261128T030000Z.dump.gz.gpg" || s.Status.Restore.Phase != authv1alpha1.RestoreSucceeded {
			return fmt.Errorf("condition %+v, status %+v", c, s.Status.Restore)
		}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), &appsv1.Deployment{}); err != nil {
			return err
		}
		if err := k8s.Get(ctx, key(ns, "auth-backup-postgres"), &batchv1.CronJob{}); err != nil {
			return err
		}
		return hasEvent(ns, "RestoreSucceeded", corev1.EventTypeNormal)
	})

	// Final: the Job deleted and a new operator never run it again.
	deleteJob(t, ns, &job)
	eventually(t, "the Job is gone", func() error { return absent(ns, job.Name, &batchv1.Job{}) })
	op.shutdown()
	op = startOperator(t, ns)
	settle(t, op, ns)
	if jobs := restoreJobs(t, ns); len(jobs) != 0 {
		t.Fatalf("a succeeded restore ran again: %d Jobs", len(jobs))
	}

	// Status lost (a restore of the AuthStack object without status): a Job runs, finds
	// the marker its predecessor wrote in the database, and reports success; the
	// authserver keeps running meanwhile.
	var cur authv1alpha1.AuthStack
	if err := k8s.Get(ctx, key(ns, "auth"), &cur); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Status.Restore = nil
	if err := k8s.Status().Patch(ctx, &cur, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a restore Job after the status was lost", func() error {
		if jobs := restoreJobs(t, ns); len(jobs) != 1 {
			return fmt.Errorf("%d Jobs", len(jobs))
		}
		return nil
	})
	job = restoreJobs(t, ns)[0]
	if err := k8s.Get(ctx, key(ns, "auth-authserver"), &appsv1.Deployment{}); err != nil {
		t.Fatalf("the authserver was removed while the lost status was re-established: %v", err)
	}
	finishJob(t, ns, &job, true, string(result.Result{Kind: "postgres", OK: true, Object: "prod/postgres/20261128T030000Z.dump.gz.gpg", Reason: result.RestoreAlreadyRestored}.Line()))
	eventually(t, "Restored=True again", func() error {
		c, s, err := restored(ns)
		if err != nil {
			return err
		}
		// The condition is still True from the first restore while status.restore is lost.
		if c == nil || c.Status != metav1.ConditionTrue || s.Status.Restore == nil || !strings.Contains(s.Status.Restore.Message, "already held") {
			return fmt.Errorf("condition %+v, status %+v", c, s.Status.Restore)
		}
		return nil
	})
}
