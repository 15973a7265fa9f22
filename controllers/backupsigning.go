package controllers

// The backups' signing key (authserver/backup/sign.go): generated once per stack into
// its own Secret, kept like the pepper. Backups are signed with it; drills and declared
// restores refuse a backup its public half does not verify. See
// docs/backup-and-restore.md, "Signed backups", and DESIGN.md.

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// ensureBackupSigningKey creates the signing key's Secret once, for a stack with
// spec.backup. It never updates or deletes it. If the Secret is gone after the stack
// recorded it (status.backups.signingKeySecret), it makes no new one and says so in
// obs.backups.signingMissing: a new key would leave every backup the old one signed
// unverifiable, so that is a person's decision. Paused, nothing is generated.
func (r *AuthStackReconciler) ensureBackupSigningKey(ctx context.Context, stack *authv1alpha1.AuthStack, obs *observation) error {
	if stack.Spec.Backup == nil || paused(stack) {
		return nil
	}
	name := resources.BackupSigningSecretName(stack)
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: stack.Namespace, Name: name},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}})
	if err == nil {
		obs.backups.signingKey = name
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading the backup signing key Secret %q: %w", name, err)
	}
	if b := stack.Status.Backups; b != nil && b.SigningKeySecret != "" {
		obs.backups.signingMissing = fmt.Sprintf("the backup signing key Secret %q of this stack was deleted: restore it from your copy "+
			"(docs/backup-and-restore.md, \"Signed backups\"). The operator does not generate a new key for a stack that had one: "+
			"no restore would accept the backups the old key signed", name)
		return nil
	}
	signing, verify, err := resources.NewBackupSigningKey()
	if err != nil {
		return err
	}
	if err := r.Create(ctx, resources.BackupSigningSecret(stack, signing, verify)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the backup signing key Secret %q: %w", name, err)
	} else if err == nil {
		r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, "BackupSigningKeyGenerated", "Generate",
			"generated the key the backups are signed with into Secret %q; it is kept when the AuthStack is deleted", name)
	}
	obs.backups.signingKey = name
	return nil
}
