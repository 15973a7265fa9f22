package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/backup/result"
)

// runDrill creates a Job from the drill CronJob's template, as the CronJob
// controller would (envtest runs none), and finishes it with result line msg.
func runDrill(t *testing.T, ns, name string, ok bool, msg string) {
	t.Helper()
	runCronJob(t, ns, "auth-backup-verify", name, ok, msg)
}

// runCronJob creates the Job name from the template of the CronJob cronJob and
// finishes it (ok or failed) with the termination message msg.
func runCronJob(t *testing.T, ns, cronJob, name string, ok bool, msg string) {
	t.Helper()
	ctx := context.Background()
	cj := &batchv1.CronJob{}
	if err := k8s.Get(ctx, key(ns, cronJob), cj); err != nil {
		t.Fatal(err)
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: cj.Spec.JobTemplate.Labels},
		Spec:       *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
	if err := k8s.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	finishJob(t, ns, job, ok, msg)
}

func restoreVerified(t *testing.T, ns string) (*metav1.Condition, *authv1alpha1.AuthStack) {
	t.Helper()
	var s authv1alpha1.AuthStack
	if err := k8s.Get(context.Background(), key(ns, "auth"), &s); err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionRestoreVerified), &s
}

func drillEvents(t *testing.T, ns string) (normal, warning []string) {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		switch e.Reason {
		case "RestoreVerified":
			normal = append(normal, e.Note)
		case "RestoreVerificationFailed":
			warning = append(warning, e.Note)
		}
	}
	return normal, warning
}

// TestRestoreDrillStatus on the real API server: spec.backup.verify renders the
// drill CronJob; RestoreVerified names a missing private key Secret, awaits the
// first drill, then follows the drill Jobs' results (True with the backup, its
// age and the restore time; False with the drill's reason), with one Event per
// transition; removing verify deletes the CronJob and the condition.
func TestRestoreDrillStatus(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	ctx := context.Background()
	for name, data := range map[string]map[string]string{
		"backup-key": {"public.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----"},
		"s3":         {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3-secret"},
	} {
		if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}); err != nil {
			t.Fatal(err)
		}
	}
	stack := withBackupSpec(sampleStack(ns, "auth"))
	stack.Spec.Backup.Encryption.PrivateKeySecretRef = &authv1alpha1.SecretKeyRef{Name: "backup-private", Key: "private.asc"}
	stack.Spec.Backup.Verify = &authv1alpha1.DrillSpec{Schedule: "0 5 * * *"}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	cj := &batchv1.CronJob{}
	eventually(t, "the drill CronJob exists", func() error { return k8s.Get(ctx, key(ns, "auth-backup-verify"), cj) })
	if cj.Spec.Schedule != "0 5 * * *" || cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args[1] != "verify" {
		t.Errorf("drill CronJob %+v", cj.Spec)
	}
	eventually(t, "RestoreVerified names the missing private key", func() error {
		c, _ := restoreVerified(t, ns)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonSecretNotFound ||
			!strings.Contains(c.Message, "spec.backup.encryption.privateKeySecretRef") {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "backup-private", Namespace: ns},
		StringData: map[string]string{"private.asc": "-----BEGIN PGP PRIVATE KEY BLOCK-----"}}); err != nil {
		t.Fatal(err)
	}
	reconcileNow(t, op, ns)
	eventually(t, "RestoreVerified awaits the first drill", func() error {
		c, s := restoreVerified(t, ns)
		if c == nil || c.Status != metav1.ConditionUnknown || c.Reason != authv1alpha1.ReasonAwaitingFirstDrill || c.ObservedGeneration != s.Generation {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})

	runDrill(t, ns, "auth-backup-verify-1", true,
		`{"kind":"verify","ok":true,"reason":"DrillSucceeded","object":"prod/postgres/20261128T030000Z.dump.gz.gpg","backup_time":"2026-11-28T03:00:00Z","restore_ms":14200,"tables":9,"rows":321}`)
	eventually(t, "RestoreVerified True from the drill", func() error {
		c, s := restoreVerified(t, ns)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != authv1alpha1.ReasonDrillSucceeded {
			return fmt.Errorf("condition %+v", c)
		}
		for _, want := range []string{"prod/postgres/20261128T030000Z.dump.gz.gpg", "restored in 14s", "taken 2026-11-28T03:00:00Z", "Data-loss window"} {
			if !strings.Contains(c.Message, want) {
				return fmt.Errorf("message %q lacks %q", c.Message, want)
			}
		}
		d := s.Status.Backups.LastDrill
		if d == nil || !d.Succeeded || d.Job != "auth-backup-verify-1" || d.RestoreSeconds != 14 || s.Status.Backups.LastSuccessfulDrill == nil {
			return fmt.Errorf("lastDrill %+v", d)
		}
		if r := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionReady); r != nil && strings.Contains(r.Message, "RestoreVerified") {
			return fmt.Errorf("Ready depends on drills: %+v", r)
		}
		return nil
	})

	runDrill(t, ns, "auth-backup-verify-2", false,
		`{"kind":"verify","ok":false,"reason":"BackupUnreadable","object":"prod/postgres/20261129T030000Z.dump.gz.gpg","error":"backup prod/postgres/20261129T030000Z.dump.gz.gpg: gzip: invalid checksum; the backup is damaged or truncated, try an older one"}`)
	eventually(t, "RestoreVerified False with the drill's reason", func() error {
		c, s := restoreVerified(t, ns)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "BackupUnreadable" || !strings.Contains(c.Message, "try an older one") {
			return fmt.Errorf("condition %+v", c)
		}
		if b := s.Status.Backups; b == nil || b.LastSuccessfulDrill == nil || b.LastDrill == nil ||
			b.LastSuccessfulDrill.Job != "auth-backup-verify-1" || b.LastDrill.Job != "auth-backup-verify-2" {
			return fmt.Errorf("drills %+v", s.Status.Backups)
		}
		return nil
	})
	eventually(t, "one Event per transition", func() error {
		normal, warning := drillEvents(t, ns)
		// SecretNotFound (False), then True, then BackupUnreadable (False).
		if len(normal) != 1 || len(warning) != 2 || !strings.Contains(warning[len(warning)-1]+warning[0], "BackupUnreadable") {
			return fmt.Errorf("events: normal %q, warning %q", normal, warning)
		}
		return nil
	})
	// Reconciles without a change record no more.
	for range 3 {
		reconcileNow(t, op, ns)
	}
	if normal, warning := drillEvents(t, ns); len(normal) != 1 || len(warning) != 2 {
		t.Errorf("events without a transition: normal %q, warning %q", normal, warning)
	}

	var cur authv1alpha1.AuthStack
	if err := k8s.Get(ctx, key(ns, "auth"), &cur); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.Backup.Verify = nil
	if err := k8s.Patch(ctx, &cur, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "drill CronJob deleted, condition removed", func() error {
		if err := k8s.Get(ctx, key(ns, "auth-backup-verify"), &batchv1.CronJob{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("CronJob: %v", err)
		}
		if c, _ := restoreVerified(t, ns); c != nil {
			return fmt.Errorf("condition still set: %+v", c)
		}
		return nil
	})
}

// runBackup creates a postgres backup Job from its CronJob's template (envtest runs
// no CronJob controller) and finishes it, stored as object.
func runBackup(t *testing.T, ns, name, object string) {
	t.Helper()
	runCronJob(t, ns, "auth-backup-postgres", name, true,
		string(result.Result{Kind: "postgres", OK: true, Stored: true, Object: object, SizeBytes: 4242}.Line()))
}

// drillExpects is the drill CronJob's BACKUP_EXPECT_NEWEST ("" when unset) and its generation.
func drillExpects(ns string) (string, int64, error) {
	cj := &batchv1.CronJob{}
	if err := k8s.Get(context.Background(), key(ns, "auth-backup-verify"), cj); err != nil {
		return "", 0, err
	}
	for _, e := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "BACKUP_EXPECT_NEWEST" {
			return e.Value, cj.Generation, nil
		}
	}
	return "", cj.Generation, nil
}

// TestDrillExpectsTheNewestBackup on the real API server: the drill CronJob carries
// the newest backup the stack recorded (status.backups.postgres.newest) as
// BACKUP_EXPECT_NEWEST, updated once per new backup and never on a no-op reconcile;
// a drill that found it deleted (NewestBackupMissing) makes RestoreVerified False.
func TestDrillExpectsTheNewestBackup(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	ctx := context.Background()
	createBackupSecrets(t, ns)
	op := startOperator(t, ns)
	stack := withBackupSpec(sampleStack(ns, "auth"))
	stack.Spec.Backup.Encryption.PrivateKeySecretRef = &authv1alpha1.SecretKeyRef{Name: "backup-private", Key: "private.asc"}
	stack.Spec.Backup.Verify = &authv1alpha1.DrillSpec{Schedule: "0 5 * * *"}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the drill CronJob exists, expecting nothing before the first backup", func() error {
		exp, _, err := drillExpects(ns)
		if err == nil && exp != "" {
			return fmt.Errorf("BACKUP_EXPECT_NEWEST %q", exp)
		}
		return err
	})
	if err := k8s.Get(ctx, key(ns, "auth-backup-postgres"), &batchv1.CronJob{}); err != nil {
		t.Fatal(err)
	}

	var gens []int64
	for i, object := range []string{"prod/postgres/20261128T030000Z.dump.gz.gpg", "prod/postgres/20261129T030000Z.dump.gz.gpg"} {
		runBackup(t, ns, fmt.Sprintf("auth-backup-postgres-%d", i+1), object)
		eventually(t, "the drill expects "+object, func() error {
			if exp, _, err := drillExpects(ns); err != nil || exp != object {
				return fmt.Errorf("BACKUP_EXPECT_NEWEST %q, %v", exp, err)
			}
			return nil
		})
		settle(t, op, ns)
		before := op.writes.count()
		for range 10 {
			reconcileNow(t, op, ns)
		}
		if d := op.writes.count() - before; d != 0 {
			t.Errorf("10 no-op reconciles after backup %d sent %d writes: %s", i+1, d, op.writes.recent())
		}
		_, gen, err := drillExpects(ns)
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, gen)
	}
	if gens[1] != gens[0]+1 {
		t.Errorf("the drill CronJob's generation went %d -> %d for one new backup, want one update", gens[0], gens[1])
	}

	// The drill Job carries it; finding it deleted fails the drill by name.
	runDrill(t, ns, "auth-backup-verify-1", false, string(result.Result{Kind: result.KindVerify, Reason: result.ReasonNewestBackupMissing,
		Error: "the newest backup this stack recorded, prod/postgres/20261129T030000Z.dump.gz.gpg, is not in the bucket: someone deleted it; latest would be prod/postgres/20261128T030000Z.dump.gz.gpg"}.Line()))
	job := &batchv1.Job{}
	if err := k8s.Get(ctx, key(ns, "auth-backup-verify-1"), job); err != nil {
		t.Fatal(err)
	}
	if env := envMap(job.Spec.Template.Spec.Containers[0]); env["BACKUP_EXPECT_NEWEST"] != "prod/postgres/20261129T030000Z.dump.gz.gpg" {
		t.Errorf("drill Job BACKUP_EXPECT_NEWEST %q", env["BACKUP_EXPECT_NEWEST"])
	}
	eventually(t, "RestoreVerified False NewestBackupMissing", func() error {
		c, _ := restoreVerified(t, ns)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonNewestBackupMissing || !strings.Contains(c.Message, "someone deleted it") {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
}

func envMap(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// TestRestoreInPlaceExpectsTheNewestBackup on the real API server: a declared
// restore of latest for a stack whose status already records a backup (re-created
// with its status) gets that backup as BACKUP_EXPECT_NEWEST; the Job refusing with
// NewestBackupMissing makes Restored False with that reason.
func TestRestoreInPlaceExpectsTheNewestBackup(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	ctx := context.Background()
	createBackupSecrets(t, ns)
	stack := withBackupSpec(sampleStack(ns, "auth"))
	stack.Spec.Backup.Encryption.PrivateKeySecretRef = &authv1alpha1.SecretKeyRef{Name: "backup-private", Key: "private.asc"}
	stack.Spec.Bootstrap = &authv1alpha1.BootstrapSpec{FromBackup: &authv1alpha1.FromBackupSpec{}}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	const newest = "prod/postgres/20261129T030000Z.dump.gz.gpg"
	stack.Status.Backups = &authv1alpha1.BackupsStatus{Postgres: authv1alpha1.BackupKindStatus{
		LastSuccess: &authv1alpha1.BackupRun{Job: "auth-backup-postgres-1", Time: metav1.Now(), Object: newest}}}
	if err := k8s.Status().Update(ctx, stack); err != nil {
		t.Fatal(err)
	}
	startOperator(t, ns) // after the status: the Job is rendered from it
	eventually(t, "one restore Job expecting "+newest, func() error {
		jobs := restoreJobs(t, ns)
		if len(jobs) != 1 {
			return fmt.Errorf("%d restore Jobs", len(jobs))
		}
		if got := envMap(jobs[0].Spec.Template.Spec.Containers[0])["BACKUP_EXPECT_NEWEST"]; got != newest {
			return fmt.Errorf("BACKUP_EXPECT_NEWEST %q", got)
		}
		return nil
	})
	// The restore found it deleted: refused by name, nothing restored.
	job := restoreJobs(t, ns)[0]
	msg := "the newest backup this stack recorded, " + newest + ", is not in the bucket: someone deleted it"
	finishJob(t, ns, &job, false, string(result.Result{Kind: "postgres", Reason: result.ReasonNewestBackupMissing, Error: msg}.Line()))
	eventually(t, "Restored=False NewestBackupMissing", func() error {
		c, s, err := restored(ns)
		if err != nil {
			return err
		}
		if c == nil || c.Reason != authv1alpha1.ReasonNewestBackupMissing || !strings.Contains(c.Message, msg) || s.Status.Restore.Phase != authv1alpha1.RestoreFailed {
			return fmt.Errorf("condition %+v, status %+v", c, s.Status.Restore)
		}
		return nil
	})
}
