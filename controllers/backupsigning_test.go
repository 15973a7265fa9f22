package controllers

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/backup/result"
	"github.com/leanauth/authstack/controllers/resources"
)

// signingItems is what a pod template mounts of the signing key's Secret.
func signingItems(spec corev1.PodSpec) []string {
	var out []string
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "auth-backup-signing" {
			for _, it := range v.Secret.Items {
				out = append(out, it.Key)
			}
		}
	}
	return out
}

// TestBackupSigningKey: the operator generates an ed25519 key pair once, in a Secret it
// keeps (no owner, immutable); the backup Jobs mount only its private half, the drill
// and the restore only its public half; a restore refused as not authentic is reported
// with its reason, the object's name and a Warning event; a deleted key is reported
// and never silently replaced.
func TestBackupSigningKey(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	ctx := context.Background()
	createBackupSecrets(t, ns)
	op := startOperator(t, ns)
	stack := withBackupSpec(sampleStack(ns, "auth"))
	stack.Spec.Backup.Encryption.PrivateKeySecretRef = &authv1alpha1.SecretKeyRef{Name: "backup-private", Key: "private.asc"}
	stack.Spec.Backup.Verify = &authv1alpha1.DrillSpec{}
	trust := metav1.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	stack.Spec.Backup.Signing = authv1alpha1.BackupSigning{TrustUnsignedBefore: &trust, MaxExpansion: 50}
	stack.Spec.Bootstrap = &authv1alpha1.BootstrapSpec{FromBackup: &authv1alpha1.FromBackupSpec{}}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}

	var secret corev1.Secret
	eventually(t, "the signing key Secret", func() error { return k8s.Get(ctx, key(ns, "auth-backup-signing"), &secret) })
	if len(secret.OwnerReferences) != 0 || secret.Immutable == nil || !*secret.Immutable || secret.Annotations[resources.AnnotationRetain] != "true" {
		t.Errorf("the signing key Secret must outlive the stack and never change: owners %v, immutable %v, annotations %v",
			secret.OwnerReferences, secret.Immutable, secret.Annotations)
	}
	priv, pub := parseKeyPair(t, secret.Data[resources.BackupSigningKeyKey], secret.Data[resources.BackupVerifyKeyKey])
	if !ed25519.Verify(pub, []byte("m"), ed25519.Sign(priv, []byte("m"))) {
		t.Fatal("verify.pem is not the public half of signing.pem")
	}
	// Events are recorded asynchronously, after the Secret exists.
	eventually(t, "the BackupSigningKeyGenerated event", func() error {
		return hasEvent(ns, "BackupSigningKeyGenerated", corev1.EventTypeNormal)
	})

	// The restore verifies with the public half and knows the opt-ins.
	eventually(t, "one restore Job", func() error {
		if jobs := restoreJobs(t, ns); len(jobs) != 1 {
			return fmt.Errorf("%d restore Jobs", len(jobs))
		}
		return nil
	})
	job := restoreJobs(t, ns)[0]
	if got := signingItems(job.Spec.Template.Spec); strings.Join(got, ",") != resources.BackupVerifyKeyKey {
		t.Errorf("the restore mounts %v of the signing key, want only %s", got, resources.BackupVerifyKeyKey)
	}
	env := map[string]string{}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["BACKUP_VERIFY_KEY_FILE"] == "" || env["BACKUP_TRUST_UNSIGNED_BEFORE"] != "2026-11-30T00:00:00Z" || env["BACKUP_MAX_EXPANSION"] != "50" {
		t.Errorf("restore env %v", env)
	}

	// Refused as not authentic: the reason, the object's name, a Warning event; no retry.
	forged := "prod/postgres/20261129T030000Z.dump.gz.gpg"
	finishJob(t, ns, &job, false, string(result.Result{Kind: "postgres", Object: forged, Reason: result.ReasonBackupNotAuthentic,
		Error: "backup " + forged + " is not authentic, nothing was decrypted or restored: it has no signature object (" + forged + ".sig)"}.Line()))
	eventually(t, "Restored=False BackupNotAuthentic", func() error {
		c, s, err := restored(ns)
		if err != nil {
			return err
		}
		if c == nil || c.Reason != authv1alpha1.ReasonBackupNotAuthentic || !strings.Contains(c.Message, forged) || s.Status.Restore.Phase != authv1alpha1.RestoreFailed {
			return fmt.Errorf("condition %+v, status %+v", c, s.Status.Restore)
		}
		return hasEvent(ns, "RestoreFailed", corev1.EventTypeWarning)
	})
	for range 2 {
		reconcileNow(t, op, ns)
	}
	if jobs := restoreJobs(t, ns); len(jobs) != 1 {
		t.Fatalf("a refused restore was retried on its own: %d Jobs", len(jobs))
	}

	// Deleted and retried: the newest authentic backup restored, a newer forged one skipped: a warning in the condition.
	deleteJob(t, ns, &job)
	eventually(t, "a new restore Job", func() error {
		jobs := restoreJobs(t, ns)
		if len(jobs) != 1 || jobs[0].UID == job.UID {
			return fmt.Errorf("%d Jobs", len(jobs))
		}
		job = jobs[0]
		return nil
	})
	finishJob(t, ns, &job, true, string(result.Result{Kind: "postgres", OK: true, Object: "prod/postgres/20261128T030000Z.dump.gz.gpg", Skipped: 1}.Line()))
	eventually(t, "Restored=True with a warning, then the backups", func() error {
		c, s, err := restored(ns)
		if err != nil {
			return err
		}
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "1 newer objects in the bucket are not backups signed by this stack's key") {
			return fmt.Errorf("condition %+v", c)
		}
		if s.Status.Backups == nil || s.Status.Backups.SigningKeySecret != "auth-backup-signing" {
			return fmt.Errorf("status.backups %+v", s.Status.Backups)
		}
		return k8s.Get(ctx, key(ns, "auth-backup-verify"), &batchv1.CronJob{})
	})

	// The backup Jobs sign (the private half only); the drill verifies (the public half only).
	for name, want := range map[string]string{"auth-backup-postgres": resources.BackupSigningKeyKey, "auth-backup-redis": resources.BackupSigningKeyKey,
		"auth-backup-verify": resources.BackupVerifyKeyKey} {
		var cj batchv1.CronJob
		if err := k8s.Get(ctx, key(ns, name), &cj); err != nil {
			t.Fatal(err)
		}
		if got := signingItems(cj.Spec.JobTemplate.Spec.Template.Spec); strings.Join(got, ",") != want {
			t.Errorf("%s mounts %v of the signing key, want only %s", name, got, want)
		}
	}

	// Deleted after use: reported, and not replaced by a key that verifies none of the backups.
	if err := k8s.Delete(ctx, &secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "BackupsHealthy=False naming the deleted key", func() error {
		c, _, err := backupsHealthy(ns)
		if err != nil {
			return err
		}
		if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, `"auth-backup-signing"`) || !strings.Contains(c.Message, "was deleted") {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	for range 3 {
		reconcileNow(t, op, ns)
	}
	if err := absent(ns, "auth-backup-signing", &corev1.Secret{}); err != nil {
		t.Fatalf("a new signing key was generated over the backups the old one signed: %v", err)
	}
}

func parseKeyPair(t *testing.T, signing, verify []byte) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	b, _ := pem.Decode(signing)
	p, _ := pem.Decode(verify)
	if b == nil || p == nil || b.Type != "PRIVATE KEY" || p.Type != "PUBLIC KEY" {
		t.Fatal("signing.pem or verify.pem is not a PEM key of the right type")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.ParsePKIXPublicKey(p.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv, ok1 := k.(ed25519.PrivateKey)
	pub, ok2 := pk.(ed25519.PublicKey)
	if !ok1 || !ok2 {
		t.Fatal("not ed25519")
	}
	return priv, pub
}
