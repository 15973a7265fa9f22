package resources

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The backups' signing key (authserver/backup/sign.go): the operator generates an
// ed25519 key pair into one Secret per stack, kept like the pepper (no owner, never
// updated, never deleted). The backup Jobs mount only its private half, drills and
// restores only its public half.
const (
	ComponentBackupSigning = "backup-signing"
	// BackupSigningKeyKey and BackupVerifyKeyKey are the Secret's keys: PKCS #8 and
	// PKIX PEM, as openssl genpkey -algorithm ed25519 and openssl pkey -pubout write them.
	BackupSigningKeyKey = "signing.pem"
	BackupVerifyKeyKey  = "verify.pem"
	// BackupSigningMountPath holds the one half of the key a Job mounts.
	BackupSigningMountPath = "/var/run/authstack/backup-signing"
)

// BackupSigningSecretName names the generated signing key's Secret.
func BackupSigningSecretName(stack *authv1alpha1.AuthStack) string {
	return stack.Name + "-backup-signing"
}

// NewBackupSigningKey returns a fresh ed25519 key pair as PEM.
func NewBackupSigningKey() (signing, verify []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the backup signing key: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), nil
}

// BackupSigningSecret renders the generated signing key's Secret. Like the pepper's
// it has no owner reference (deleting the AuthStack keeps it: the backups in the
// bucket outlive the stack, and a restore needs its public half) and is immutable.
func BackupSigningSecret(stack *authv1alpha1.AuthStack, signing, verify []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      BackupSigningSecretName(stack),
			Namespace: stack.Namespace,
			Labels:    Labels(stack, ComponentBackupSigning),
			Annotations: map[string]string{
				AnnotationRetain: "true",
				"auth.leanauth.dev/note": "The key the backups of AuthStack " + stack.Name + " are signed with. Never deleted by the operator. " +
					"Without its verify.pem no restore accepts those backups: keep a copy with the pepper's.",
			},
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: ptr.To(true),
		Data:      map[string][]byte{BackupSigningKeyKey: signing, BackupVerifyKeyKey: verify},
	}
}

// BackupVerifyKeyRef is the public key a restore checks its backup with: the one
// spec.bootstrap.fromBackup names, else the stack's own.
func BackupVerifyKeyRef(stack *authv1alpha1.AuthStack) authv1alpha1.SecretKeyRef {
	if b := stack.Spec.Bootstrap; b != nil && b.FromBackup != nil && b.FromBackup.VerifyKeySecretRef != nil {
		return *b.FromBackup.VerifyKeySecretRef
	}
	return authv1alpha1.SecretKeyRef{Name: BackupSigningSecretName(stack), Key: BackupVerifyKeyKey}
}

// backupSigningVolume mounts one half of a key as BackupSigningMountPath/<file>.
func backupSigningVolume(ref authv1alpha1.SecretKeyRef, file string) (corev1.Volume, corev1.VolumeMount) {
	return secretVolume("backup-signing", ref.Name, corev1.KeyToPath{Key: ref.Key, Path: file}),
		corev1.VolumeMount{Name: "backup-signing", MountPath: BackupSigningMountPath, ReadOnly: true}
}

// backupTrustEnv is what a drill or restore accepts: the verify key file (mounted by
// backupSigningVolume) and spec.backup.signing.
func backupTrustEnv(stack *authv1alpha1.AuthStack) []corev1.EnvVar {
	env := []corev1.EnvVar{{Name: "BACKUP_VERIFY_KEY_FILE", Value: BackupSigningMountPath + "/" + BackupVerifyKeyKey}}
	s := stack.Spec.Backup.Signing
	if s.TrustUnsignedBefore != nil {
		env = append(env, corev1.EnvVar{Name: "BACKUP_TRUST_UNSIGNED_BEFORE", Value: s.TrustUnsignedBefore.UTC().Format(time.RFC3339)})
	}
	if s.MaxExpansion != 0 {
		env = append(env, corev1.EnvVar{Name: "BACKUP_MAX_EXPANSION", Value: strconv.Itoa(int(s.MaxExpansion))})
	}
	return env
}
