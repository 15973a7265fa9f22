package resources

import (
	"cmp"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// ComponentBackupVerify labels the restore drill's CronJob, Jobs and pods.
const ComponentBackupVerify = "backup-verify"

// Restore drill settings (spec.backup.verify, docs/backup-and-restore.md).
const (
	// DrillKeyMountPath holds the private key (and its passphrase): mounted by
	// the drill only, never by the backup CronJobs.
	DrillKeyMountPath      = "/var/run/authstack/backup-private-key"
	DrillKeyFileName       = "private.asc"
	DrillPassphraseFile    = "passphrase"
	drillWorkMountPath     = "/var/lib/authstack-drill"
	DrillActiveDeadlineSec = 3 * 3600 // below authserver/backup.ScratchStaleAfter (4 h)
)

// DrillCronJobName names the restore drill's CronJob (52 characters at most, like the backups').
func DrillCronJobName(stack *authv1alpha1.AuthStack) string {
	return boundedName(stack.Name+"-backup-verify", 52)
}

// DrillJobLabels select the drill's Jobs and pods.
func DrillJobLabels(stack *authv1alpha1.AuthStack) map[string]string {
	return SelectorLabels(stack, ComponentBackupVerify)
}

// DrillCronJob renders the restore drill: a CronJob running "authserver backup
// verify" with the database URL the postgres backup uses (its role creates and
// drops the scratch database: it needs CREATEDB), the bucket, the private key
// and the pepper; and BACKUP_EXPECT_NEWEST, the newest backup the stack recorded
// (expectNewestEnv), so that a drill fails when that one was deleted instead of
// verifying an older one. It changes once per new backup (one update of the
// CronJob), and a backup finishing after it was rendered is newer: fine. nil
// without spec.backup.verify, without the private key, or when the postgres
// backup has no URL.
func DrillCronJob(stack *authv1alpha1.AuthStack, src BackupSources) *batchv1.CronJob {
	b := stack.Spec.Backup
	if b == nil || b.Verify == nil || b.Encryption.PrivateKeySecretRef == nil || src.DatabaseURL == nil {
		return nil
	}
	priv := b.Encryption.PrivateKeySecretRef
	env := append(backupStoreEnv(stack),
		secretEnv("DATABASE_URL", *src.DatabaseURL),
		corev1.EnvVar{Name: "BACKUP_PRIVATE_KEY_FILE", Value: DrillKeyMountPath + "/" + DrillKeyFileName},
		corev1.EnvVar{Name: "AUTH_PEPPER_FILE", Value: PepperMountPath + "/" + PepperFileName},
		// The decrypted dump is kept on disk while it is restored (not in the small in-memory /tmp).
		corev1.EnvVar{Name: "TMPDIR", Value: drillWorkMountPath},
	)
	env = append(env, backupTrustEnv(stack)...)
	env = append(env, expectNewestEnv(stack, b.Destination.S3)...)
	// The public half of the stack's signing key: a drill verifies, never signs.
	verifyVol, verifyMount := backupSigningVolume(authv1alpha1.SecretKeyRef{Name: BackupSigningSecretName(stack), Key: BackupVerifyKeyKey}, BackupVerifyKeyKey)
	keyItems := []corev1.KeyToPath{{Key: priv.Key, Path: DrillKeyFileName}}
	volumes := []corev1.Volume{
		secretVolume("pepper", src.Pepper.Name, corev1.KeyToPath{Key: src.Pepper.Key, Path: PepperFileName}),
		{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		verifyVol,
	}
	mounts := []corev1.VolumeMount{
		{Name: "backup-private-key", MountPath: DrillKeyMountPath, ReadOnly: true},
		{Name: "pepper", MountPath: PepperMountPath, ReadOnly: true},
		{Name: "work", MountPath: drillWorkMountPath},
		verifyMount,
		tmpMount,
	}
	if pp := b.Encryption.PassphraseSecretRef; pp != nil {
		env = append(env, corev1.EnvVar{Name: "BACKUP_PRIVATE_KEY_PASSPHRASE_FILE", Value: DrillKeyMountPath + "/" + DrillPassphraseFile})
		if pp.Name == priv.Name {
			keyItems = append(keyItems, corev1.KeyToPath{Key: pp.Key, Path: DrillPassphraseFile})
		} else {
			// A projected volume joins the two Secrets under one directory.
			volumes = append(volumes, corev1.Volume{Name: "backup-private-key", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptr.To[int32](0o440),
				Sources: []corev1.VolumeProjection{
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: priv.Name}, Items: keyItems}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: pp.Name},
						Items: []corev1.KeyToPath{{Key: pp.Key, Path: DrillPassphraseFile}}}},
				},
			}}})
			keyItems = nil
		}
	}
	if keyItems != nil {
		volumes = append(volumes, secretVolume("backup-private-key", priv.Name, keyItems...))
	}
	res := backupResources()
	labels := Labels(stack, ComponentBackupVerify)
	cj := &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: objectMeta(stack, DrillCronJobName(stack), ComponentBackupVerify),
		Spec: batchv1.CronJobSpec{
			Schedule:                   cmp.Or(b.Verify.Schedule, authv1alpha1.DefaultDrillSchedule),
			Suspend:                    ptr.To(b.Verify.Suspend),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			StartingDeadlineSeconds:    ptr.To[int64](BackupStartingDeadlineSeconds),
			SuccessfulJobsHistoryLimit: ptr.To[int32](BackupHistoryLimit),
			FailedJobsHistoryLimit:     ptr.To[int32](BackupHistoryLimit),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: batchv1.JobSpec{
					// A failed drill is a finding, not a glitch to retry: the
					// next scheduled drill tries again.
					BackoffLimit:          ptr.To[int32](0),
					ActiveDeadlineSeconds: ptr.To[int64](DrillActiveDeadlineSec),
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: restrictedPod(corev1.PodSpec{
							RestartPolicy: corev1.RestartPolicyNever,
							// Time to drop the scratch database after SIGTERM.
							TerminationGracePeriodSeconds: ptr.To[int64](60),
							Containers: []corev1.Container{{
								Name:                   ComponentBackupVerify,
								Image:                  src.Image,
								Args:                   []string{"backup", "verify"},
								Env:                    sortEnv(append(env, runtimeEnv(ComponentBackupVerify, res)...)),
								Resources:              res,
								TerminationMessagePath: BackupResultFile,
								VolumeMounts:           mounts,
							}},
							Volumes: volumes,
						}),
					},
				},
			},
		},
	}
	// A backup taken before a rotation's current pepper hashed has a canary of an
	// older one: the drill gets the older peppers too, as the pods do.
	tpl := &cj.Spec.JobTemplate.Spec.Template
	tpl.Annotations = map[string]string{}
	withPepperMounts(tpl, src.PepperMounts) // pepperrotation.go
	return cj
}
