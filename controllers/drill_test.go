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
)

// runDrill creates a Job from the drill CronJob's template, as the CronJob
// controller would (envtest runs none), and finishes it with result line msg.
func runDrill(t *testing.T, ns, name string, ok bool, msg string) {
	t.Helper()
	ctx := context.Background()
	cj := &batchv1.CronJob{}
	if err := k8s.Get(ctx, key(ns, "auth-backup-verify"), cj); err != nil {
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
