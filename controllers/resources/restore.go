package resources

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/backup/result"
)

// ComponentRestore labels the declared restore's Job and pod (spec.bootstrap.fromBackup).
const ComponentRestore = "restore"

// Restore Job settings.
const (
	// RestoreKeyMountPath holds the private key (and its passphrase) files.
	RestoreKeyMountPath = "/var/run/authstack/restore-key"
	// RestoreWorkPath is the disk-backed emptyDir the decrypted dump is kept in while
	// pg_restore reads it (TMPDIR): it needs about the uncompressed dump's size.
	RestoreWorkPath = "/var/lib/authstack-restore"
	// RestoreRefusedExitCode: `authserver restore` refused before writing anything
	// (target not empty, pepper mismatch); a retry would not help.
	RestoreRefusedExitCode = 4
	// RestoreBackoffLimit: retries of a failed run (a database still starting, S3 down).
	RestoreBackoffLimit = 6
	// RestoreActiveDeadlineSeconds bounds one restore, retries included.
	RestoreActiveDeadlineSeconds = 6 * 3600
)

// AuthServerRedisURL is the Secret key holding the Redis URL the authserver uses.
func AuthServerRedisURL(stack *authv1alpha1.AuthStack) authv1alpha1.SecretKeyRef {
	if r := stack.Spec.Redis.URLSecretRef; r != nil {
		return *r
	}
	return authv1alpha1.SecretKeyRef{Name: ConnectionSecretName(stack), Key: ConnectionRedisURLKey}
}

// RestoreJob renders the Job of a declared restore: `authserver restore postgres
// --once` into the stack's database (the direct URL, as for backups), with the
// backups' private key, the stack's pepper (the backup's password hashes are
// checked against it before anything is written) and the authserver's Redis (its
// session cache is flushed after restoring). It returns nil without
// spec.bootstrap.fromBackup or without a database URL in src. A restore of latest
// in place (the stack recorded a backup) gets BACKUP_EXPECT_NEWEST: latest may not be
// older than that backup (expectNewestEnv). The name hashes
// the Job and in.ConfigHash (the values of the Secrets the pods read, the pepper
// among them): fixing the pepper Secret after a refusal gives a new Job.
func RestoreJob(stack *authv1alpha1.AuthStack, src BackupSources, in Inputs) *batchv1.Job {
	b := stack.Spec.Bootstrap
	if b == nil || b.FromBackup == nil || stack.Spec.Backup == nil || src.DatabaseURL == nil {
		return nil
	}
	enc := stack.Spec.Backup.Encryption
	if enc.PrivateKeySecretRef == nil {
		return nil // the CRD requires it
	}
	s3 := stack.Spec.Backup.Destination.S3
	if b.FromBackup.Source != nil {
		s3 = b.FromBackup.Source.S3
	}
	env := []corev1.EnvVar{
		secretEnv("DATABASE_URL", *src.DatabaseURL),
		secretEnv("REDIS_URL", AuthServerRedisURL(stack)),
		{Name: "S3_BUCKET", Value: s3.Bucket},
		{Name: "S3_PREFIX", Value: s3.Prefix},
		{Name: "S3_ENDPOINT", Value: s3.Endpoint},
		{Name: "S3_REGION", Value: s3.Region},
		{Name: "S3_FORCE_PATH_STYLE", Value: strconv.FormatBool(s3.ForcePathStyle)},
		{Name: "BACKUP_PRIVATE_KEY_FILE", Value: RestoreKeyMountPath + "/private.asc"},
		{Name: "BACKUP_RESULT_FILE", Value: BackupResultFile},
		{Name: "AUTH_PEPPER_FILE", Value: PepperMountPath + "/" + PepperFileName},
		{Name: "AUTH_PEPPER_SOURCE", Value: in.Pepper.Name},
		{Name: "TMPDIR", Value: RestoreWorkPath},
	}
	env = append(env, sentryEnv(stack)...)
	env = append(env, backupTrustEnv(stack)...)
	if obj := b.FromBackup.Object; obj == "" || obj == "latest" {
		// A restore in place (the stack has backed up before): latest may not be
		// older than its newest backup.
		env = append(env, expectNewestEnv(stack, s3)...)
	}
	verifyVol, verifyMount := backupSigningVolume(BackupVerifyKeyRef(stack), BackupVerifyKeyKey)
	if r := s3.CredentialsSecretRef; r != nil {
		env = append(env,
			secretEnv("AWS_ACCESS_KEY_ID", authv1alpha1.SecretKeyRef{Name: r.Name, Key: "AWS_ACCESS_KEY_ID"}),
			secretEnv("AWS_SECRET_ACCESS_KEY", authv1alpha1.SecretKeyRef{Name: r.Name, Key: "AWS_SECRET_ACCESS_KEY"}))
	}
	keyVolumes := []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{
		LocalObjectReference: corev1.LocalObjectReference{Name: enc.PrivateKeySecretRef.Name},
		Items:                []corev1.KeyToPath{{Key: enc.PrivateKeySecretRef.Key, Path: "private.asc"}},
	}}}
	if p := enc.PassphraseSecretRef; p != nil {
		env = append(env, corev1.EnvVar{Name: "BACKUP_PRIVATE_KEY_PASSPHRASE_FILE", Value: RestoreKeyMountPath + "/passphrase"})
		keyVolumes = append(keyVolumes, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: p.Name},
			Items:                []corev1.KeyToPath{{Key: p.Key, Path: "passphrase"}},
		}})
	}
	args := []string{"restore", BackupKindPostgres, "--once"}
	if obj := b.FromBackup.Object; obj != "" && obj != "latest" {
		args = append(args, "--object", obj)
	}
	spec := batchv1.JobSpec{
		BackoffLimit: ptr.To[int32](RestoreBackoffLimit),
		// Bad configuration (2) and a refusal (4) are not helped by a retry.
		PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action: batchv1.PodFailurePolicyActionFailJob,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				ContainerName: ptr.To(ComponentRestore), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{2, RestoreRefusedExitCode},
			},
		}}},
		ActiveDeadlineSeconds: ptr.To[int64](RestoreActiveDeadlineSeconds),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: Labels(stack, ComponentRestore)},
			Spec: restrictedPod(corev1.PodSpec{
				RestartPolicy:                 corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: ptr.To[int64](30),
				Containers: []corev1.Container{{
					Name:                   ComponentRestore,
					Image:                  src.Image,
					Args:                   args,
					Env:                    sortEnv(append(env, runtimeEnv(ComponentRestore, backupResources())...)),
					Resources:              backupResources(),
					TerminationMessagePath: BackupResultFile,
					VolumeMounts: []corev1.VolumeMount{
						{Name: "restore-key", MountPath: RestoreKeyMountPath, ReadOnly: true},
						{Name: "pepper", MountPath: PepperMountPath, ReadOnly: true},
						{Name: "work", MountPath: RestoreWorkPath},
						verifyMount,
						tmpMount,
					},
				}},
				Volumes: []corev1.Volume{
					{Name: "restore-key", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
						Sources: keyVolumes, DefaultMode: ptr.To[int32](0o440),
					}}},
					secretVolume("pepper", in.Pepper.Name, corev1.KeyToPath{Key: in.Pepper.Key, Path: PepperFileName}),
					{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					verifyVol,
				},
			}),
		},
	}
	// The old peppers of a rotation verify too: a backup may predate the current one.
	spec.Template.Annotations = map[string]string{}
	withPepperMounts(&spec.Template, in.PepperMounts) // pepperrotation.go
	raw, _ := json.Marshal(spec)                      // cannot fail: plain API types
	sum := sha256.Sum256(append(raw, in.ConfigHash...))
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta(stack, RestoreJobName(stack, hex.EncodeToString(sum[:])[:8]), ComponentRestore),
		Spec:       spec,
	}
}

// RestoreJobName is <stack>-restore-<hash>, at most 63 characters (a pod label value).
func RestoreJobName(stack *authv1alpha1.AuthStack, hash string) string {
	return boundedName(stack.Name+"-restore", 54) + "-" + hash
}

// RestoreJobLabels select the restore Jobs and pods of a stack.
func RestoreJobLabels(stack *authv1alpha1.AuthStack) map[string]string {
	return SelectorLabels(stack, ComponentRestore)
}

// RestoreProgress folds the stack's restore Jobs and their pods into status.restore
// and the Restored condition's reason. current is the Job the stack renders now. A
// Succeeded prev is final. Otherwise: any Job that completed means Succeeded (its
// termination message names the object restored); an unfinished Job means Running
// (never a second Job beside it); a failed current Job means Failed, with the
// command's own message. create says the current Job does not exist and is to be
// created: first, after its failed predecessor was deleted (a retry), or when its
// inputs changed (a fixed pepper Secret).
func RestoreProgress(prev *authv1alpha1.RestoreStatus, current string, jobs []batchv1.Job, pods []corev1.Pod) (st authv1alpha1.RestoreStatus, reason string, create bool) {
	if prev != nil && prev.Phase == authv1alpha1.RestoreSucceeded {
		return *prev.DeepCopy(), authv1alpha1.ReasonRestoreSucceeded, false
	}
	var cur *batchv1.Job
	for i := range jobs {
		j := &jobs[i]
		if j.Name == current {
			cur = j
		}
		run, _, finished := BackupRunFromJob(j, podsOf(j.Name, pods))
		res := restoreResult(j.Name, pods)
		switch {
		case finished && jobComplete(j):
			return authv1alpha1.RestoreStatus{Phase: authv1alpha1.RestoreSucceeded, Object: res.Object, Job: j.Name,
				StartTime: j.Status.StartTime, CompletionTime: ptr.To(run.Time),
				Message: restoredMessage(res) + unverifiedWarning(res, j.Name)}, authv1alpha1.ReasonRestoreSucceeded, false
		case !finished && j.DeletionTimestamp == nil:
			return authv1alpha1.RestoreStatus{Phase: authv1alpha1.RestoreRunning, Job: j.Name, StartTime: j.Status.StartTime,
				Message: "restoring the backup"}, authv1alpha1.ReasonRestoreRunning, false
		}
	}
	if cur == nil {
		return authv1alpha1.RestoreStatus{Phase: authv1alpha1.RestorePending, Job: current,
			Message: "creating the restore Job"}, authv1alpha1.ReasonRestorePending, true
	}
	run, _, _ := BackupRunFromJob(cur, podsOf(cur.Name, pods))
	res := restoreResult(cur.Name, pods)
	reason = authv1alpha1.ReasonRestoreFailed
	switch res.Reason {
	case result.RestoreTargetNotEmpty:
		reason = authv1alpha1.ReasonTargetNotEmpty
	case result.RestorePepperMismatch:
		reason = authv1alpha1.ReasonPepperMismatch
	case result.ReasonBackupNotAuthentic:
		reason = authv1alpha1.ReasonBackupNotAuthentic
	case result.ReasonBackupTooLarge:
		reason = authv1alpha1.ReasonBackupTooLarge
	case result.ReasonNewestBackupMissing:
		reason = authv1alpha1.ReasonNewestBackupMissing
	}
	msg := cmp.Or(res.Error, run.Message)
	if len(msg) > 1024 {
		msg = msg[:1024] + "..."
	}
	msg += "; to retry, delete the Job " + cur.Name
	return authv1alpha1.RestoreStatus{Phase: authv1alpha1.RestoreFailed, Object: res.Object, Job: cur.Name,
		StartTime: cur.Status.StartTime, CompletionTime: ptr.To(run.Time), Message: msg}, reason, false
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func restoredMessage(res result.Result) string {
	if res.Reason == result.RestoreAlreadyRestored {
		return "the database already held this restore (its marker table authstack_restore); nothing was restored again"
	}
	return "restored; every restored session was revoked and the session cache flushed"
}

func podsOf(job string, pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.Labels[batchv1.JobNameLabel] == job {
			out = append(out, p)
		}
	}
	return out
}

// restoreResult is the result line of the newest terminated restore container of job.
func restoreResult(job string, pods []corev1.Pod) result.Result {
	newest := newestTerminated(podsOf(job, pods), func(name string) bool { return name == ComponentRestore })
	if newest == nil {
		return result.Result{}
	}
	res, _ := result.Parse(newest.Message)
	return res
}
