package resources

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// Backup kinds; each is one CronJob running "authserver backup <kind>".
const (
	BackupKindPostgres = "postgres"
	BackupKindRedis    = "redis"
)

// Backup components (pod labels, so a NetworkPolicy can let each job reach only
// the database or only Redis, plus the object store).
const (
	ComponentBackupPostgres = "backup-postgres"
	ComponentBackupRedis    = "backup-redis"
)

// AnnotationBackupNow on an AuthStack asks for a one-off backup: its value
// (any token, for example a timestamp) names the Job, so each new value runs once.
const AnnotationBackupNow = "auth.leanauth.dev/backup-now"

// Backup job settings.
const (
	// BackupKeyMountPath holds the public key file (BACKUP_PUBLIC_KEY_FILE).
	BackupKeyMountPath = "/var/run/authstack/backup-key"
	BackupKeyFileName  = "public.asc"
	// BackupResultFile is where "authserver backup" writes its one-line JSON
	// result; as the termination message it reaches the pod status, which
	// the operator reads for status.backups (object key, size).
	BackupResultFile = "/dev/termination-log"
	// BackupStartingDeadlineSeconds: a run missed (controller down) for longer is skipped.
	BackupStartingDeadlineSeconds = 3600
	// BackupActiveDeadlineSeconds bounds one run, retries included.
	BackupActiveDeadlineSeconds = 6 * 3600
	// BackupHistoryLimit bounds the finished Jobs kept, each for success and failure.
	BackupHistoryLimit = 3
	// BackupBackoffLimit: retries of a failed run within the deadline.
	BackupBackoffLimit = 1
	// OnDemandBackupTTLSeconds: a finished backup-now Job (and its pod) is deleted
	// after a day; status.backups keeps its outcome, and its request is never run again.
	OnDemandBackupTTLSeconds = 24 * 3600
)

// BackupSources says where the backup pods get what is not in spec.backup:
// the image, and the Secret keys holding the direct (not pooled) PostgreSQL
// URL and the Redis URL. The reconciler fills it; DefaultBackupSources
// covers stacks whose URLs come from the spec.
type BackupSources struct {
	Image       string
	DatabaseURL *authv1alpha1.SecretKeyRef
	RedisURL    *authv1alpha1.SecretKeyRef
	// Pepper is the stack's pepper Secret key; only the restore drill mounts it.
	Pepper authv1alpha1.SecretKeyRef
	// PepperMounts are a rotation's older peppers, which still verify the hashes of
	// a backup taken before the current one hashed (pepperrotation.go).
	PepperMounts PepperMounts
}

// DefaultBackupSources takes the image like the authserver Deployment does
// and the URLs from where the authserver gets them: spec.database.urlSecretRef
// (the database itself, even with the pooler on) or, for the managed
// database, its direct URL in the connection Secret; spec.redis.urlSecretRef
// or the managed Redis URL in the connection Secret. A managed Redis Cluster
// gets no Redis backup (RedisURL nil): a replication snapshot holds one
// node's slots only.
func DefaultBackupSources(stack *authv1alpha1.AuthStack, in Inputs) BackupSources {
	conn := func(key string) *authv1alpha1.SecretKeyRef {
		return &authv1alpha1.SecretKeyRef{Name: ConnectionSecretName(stack), Key: key}
	}
	src := BackupSources{Image: AuthServerImage(stack, in), Pepper: in.Pepper, PepperMounts: in.PepperMounts}
	switch {
	case stack.Spec.Database.URLSecretRef != nil:
		src.DatabaseURL = stack.Spec.Database.URLSecretRef
	case CloudNativePG(stack) != nil, ManagedDatabase(stack) && PoolerEnabled(stack):
		src.DatabaseURL = conn(ConnectionDatabaseDirectURLKey)
	case ManagedDatabase(stack):
		src.DatabaseURL = conn(ConnectionDatabaseURLKey)
	}
	switch {
	case stack.Spec.Redis.URLSecretRef != nil:
		src.RedisURL = stack.Spec.Redis.URLSecretRef
	case ManagedRedis(stack) && !RedisClusterMode(stack):
		src.RedisURL = conn(ConnectionRedisURLKey)
	}
	return src
}

// BackupCronJobName names the CronJob of one kind. CronJob names are limited
// to 52 characters (the Job name adds 11); longer names are cut and suffixed
// with a hash so that they stay unique.
func BackupCronJobName(stack *authv1alpha1.AuthStack, kind string) string {
	return boundedName(stack.Name+"-backup-"+kind, 52)
}

// OnDemandBackupJobName names the one-off Job for an AnnotationBackupNow value.
func OnDemandBackupJobName(stack *authv1alpha1.AuthStack, kind, token string) string {
	sum := sha256.Sum256([]byte(token))
	// 50 + 13 = 63: a Job name is also a pod label value.
	return boundedName(stack.Name+"-backup-"+kind, 50) + "-now-" + hex.EncodeToString(sum[:])[:8]
}

func boundedName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	cut := name[:max-9]
	for len(cut) > 0 && (cut[len(cut)-1] == '-' || cut[len(cut)-1] == '.') {
		cut = cut[:len(cut)-1]
	}
	return cut + "-" + hex.EncodeToString(sum[:])[:8]
}

func backupComponent(kind string) string {
	if kind == BackupKindRedis {
		return ComponentBackupRedis
	}
	return ComponentBackupPostgres
}

func backupJobSpec(stack *authv1alpha1.AuthStack, kind string) authv1alpha1.BackupJobSpec {
	if kind == BackupKindRedis {
		return stack.Spec.Backup.Redis
	}
	return stack.Spec.Backup.Postgres
}

// BackupCronJob renders the CronJob of one kind ("postgres" or "redis"). It
// returns nil when the stack has no spec.backup, or when the URL the kind
// needs is not known (sources has none).
func BackupCronJob(stack *authv1alpha1.AuthStack, kind string, src BackupSources) *batchv1.CronJob {
	if stack.Spec.Backup == nil {
		return nil
	}
	tmpl := backupJobTemplate(stack, kind, src)
	if tmpl == nil {
		return nil
	}
	js := backupJobSpec(stack, kind)
	schedule := cmp.Or(js.Schedule, authv1alpha1.DefaultBackupSchedule)
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: objectMeta(stack, BackupCronJobName(stack, kind), backupComponent(kind)),
		Spec: batchv1.CronJobSpec{
			Schedule:                   schedule,
			Suspend:                    ptr.To(js.Suspend),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			StartingDeadlineSeconds:    ptr.To[int64](BackupStartingDeadlineSeconds),
			SuccessfulJobsHistoryLimit: ptr.To[int32](BackupHistoryLimit),
			FailedJobsHistoryLimit:     ptr.To[int32](BackupHistoryLimit),
			JobTemplate:                *tmpl,
		},
	}
}

// OnDemandBackupJob renders the one-off Job for an AnnotationBackupNow value:
// the CronJob's job template under its own name (nil like BackupCronJob).
func OnDemandBackupJob(stack *authv1alpha1.AuthStack, kind string, src BackupSources, token string) *batchv1.Job {
	if stack.Spec.Backup == nil {
		return nil
	}
	tmpl := backupJobTemplate(stack, kind, src)
	if tmpl == nil {
		return nil
	}
	meta := objectMeta(stack, OnDemandBackupJobName(stack, kind, token), backupComponent(kind))
	meta.Annotations = map[string]string{AnnotationBackupNow: token}
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec:       tmpl.Spec,
	}
	job.Spec.TTLSecondsAfterFinished = ptr.To[int32](OnDemandBackupTTLSeconds)
	return job
}

func backupJobTemplate(stack *authv1alpha1.AuthStack, kind string, src BackupSources) *batchv1.JobTemplateSpec {
	b := stack.Spec.Backup
	var urlEnv corev1.EnvVar
	switch {
	case kind == BackupKindPostgres && src.DatabaseURL != nil:
		urlEnv = secretEnv("DATABASE_URL", *src.DatabaseURL)
	case kind == BackupKindRedis && src.RedisURL != nil:
		urlEnv = secretEnv("REDIS_URL", *src.RedisURL)
	default:
		return nil
	}
	js := backupJobSpec(stack, kind)
	retention := cmp.Or(js.RetentionDays, authv1alpha1.DefaultBackupRetentionDays)
	env := append(backupStoreEnv(stack),
		urlEnv,
		corev1.EnvVar{Name: "BACKUP_PUBLIC_KEY_FILE", Value: BackupKeyMountPath + "/" + BackupKeyFileName},
		corev1.EnvVar{Name: "BACKUP_RETENTION_DAYS", Value: strconv.Itoa(int(retention))},
		corev1.EnvVar{Name: "BACKUP_SIGNING_KEY_FILE", Value: BackupSigningMountPath + "/" + BackupSigningKeyKey},
	)
	component := backupComponent(kind)
	key := b.Encryption.PublicKeySecretRef
	// Only the private half of the signing key: the backup Job signs, never verifies.
	signVol, signMount := backupSigningVolume(authv1alpha1.SecretKeyRef{Name: BackupSigningSecretName(stack), Key: BackupSigningKeyKey}, BackupSigningKeyKey)
	return &batchv1.JobTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: Labels(stack, component)},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](BackupBackoffLimit),
			// Exit 2 (bad configuration) and 3 (stored, retention failed)
			// are not helped by a retry.
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr.To(component), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{2, 3},
				},
			}}},
			ActiveDeadlineSeconds: ptr.To[int64](BackupActiveDeadlineSeconds),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(stack, component)},
				Spec: restrictedPod(corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					Containers: []corev1.Container{{
						Name:                   component,
						Image:                  src.Image,
						Args:                   []string{"backup", kind},
						Env:                    sortEnv(append(env, runtimeEnv(component, backupResources())...)),
						Resources:              backupResources(),
						TerminationMessagePath: BackupResultFile,
						VolumeMounts: []corev1.VolumeMount{
							{Name: "backup-key", MountPath: BackupKeyMountPath, ReadOnly: true},
							signMount,
							tmpMount,
						},
					}},
					Volumes: []corev1.Volume{
						secretVolume("backup-key", key.Name, corev1.KeyToPath{Key: key.Key, Path: BackupKeyFileName}),
						signVol,
					},
				}),
			},
		},
	}
}

// backupStoreEnv is what every backup and drill Job gets: the bucket, its
// credentials by reference, the result file and error reporting.
func backupStoreEnv(stack *authv1alpha1.AuthStack) []corev1.EnvVar {
	s3 := stack.Spec.Backup.Destination.S3
	env := []corev1.EnvVar{
		{Name: "S3_BUCKET", Value: s3.Bucket},
		{Name: "S3_PREFIX", Value: s3.Prefix},
		{Name: "S3_ENDPOINT", Value: s3.Endpoint},
		{Name: "S3_REGION", Value: s3.Region},
		{Name: "S3_FORCE_PATH_STYLE", Value: strconv.FormatBool(s3.ForcePathStyle)},
		{Name: "BACKUP_RESULT_FILE", Value: BackupResultFile},
	}
	env = append(env, sentryEnv(stack)...) // observability.go
	if r := s3.CredentialsSecretRef; r != nil {
		env = append(env,
			secretEnv("AWS_ACCESS_KEY_ID", authv1alpha1.SecretKeyRef{Name: r.Name, Key: "AWS_ACCESS_KEY_ID"}),
			secretEnv("AWS_SECRET_ACCESS_KEY", authv1alpha1.SecretKeyRef{Name: r.Name, Key: "AWS_SECRET_ACCESS_KEY"}))
	}
	return env
}

// expectNewestEnv is BACKUP_EXPECT_NEWEST for a Job that resolves the newest
// postgres backup in s3: the key of the newest backup the stack recorded
// (status.backups.postgres.newest, newestBackup), so that one deleted from the
// bucket fails the run (NewestBackupMissing) instead of an older one being used.
// Nothing when the stack recorded none, or when s3 is not the stack's destination
// or the key is not under its prefix (another bucket is read, or the prefix
// changed since; a bucket or endpoint changed since is not told apart: the
// expectation fails there until a backup to the new one is recorded).
func expectNewestEnv(stack *authv1alpha1.AuthStack, s3 authv1alpha1.S3Destination) []corev1.EnvVar {
	var newest *authv1alpha1.BackupRun
	if b := stack.Status.Backups; b != nil {
		newest = newestBackup(b.Postgres)
	}
	if newest == nil || stack.Spec.Backup == nil {
		return nil
	}
	dest, key := stack.Spec.Backup.Destination.S3, newest.Object
	prefix := strings.Trim(dest.Prefix, "/") // as authserver/config reads S3_PREFIX
	folder := BackupKindPostgres + "/"
	if prefix != "" {
		folder = prefix + "/" + folder
	}
	name, under := strings.CutPrefix(key, folder)
	if !under || strings.Contains(name, "/") ||
		s3.Bucket != dest.Bucket || s3.Endpoint != dest.Endpoint || strings.Trim(s3.Prefix, "/") != prefix {
		return nil
	}
	return []corev1.EnvVar{{Name: "BACKUP_EXPECT_NEWEST", Value: key}}
}

// backupResources: the upload buffers one 16 MiB part; pg_dump and gzip are small.
func backupResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
}

// BackupKinds are the kinds whose CronJob the stack renders with src.
func BackupKinds(stack *authv1alpha1.AuthStack, src BackupSources) []string {
	var kinds []string
	for _, kind := range []string{BackupKindPostgres, BackupKindRedis} {
		if BackupCronJob(stack, kind, src) != nil {
			kinds = append(kinds, kind)
		}
	}
	return kinds
}

// BackupCronJobs is what the reconciler applies and deletes for backups: the
// CronJobs of the rendered kinds, and the names of the backup CronJobs to
// delete (spec.backup removed, or a kind without its URL).
func BackupCronJobs(stack *authv1alpha1.AuthStack, src BackupSources) (apply []*batchv1.CronJob, remove []string) {
	for _, kind := range []string{BackupKindPostgres, BackupKindRedis} {
		if cj := BackupCronJob(stack, kind, src); cj != nil {
			apply = append(apply, cj)
		} else {
			remove = append(remove, BackupCronJobName(stack, kind))
		}
	}
	return apply, remove
}

// OnDemandBackupJobs are the one-off Jobs the AnnotationBackupNow annotation
// asks for (one per rendered kind), or nil without the annotation or when
// status.backups.handledRequest already holds its value (a request runs once,
// even if its Jobs are deleted). The Job names derive from the annotation's
// value, so creating them is idempotent: the reconciler creates each Job that
// does not exist yet (create, not apply: a finished Job is never changed) and
// a new value runs a new backup.
func OnDemandBackupJobs(stack *authv1alpha1.AuthStack, src BackupSources) []*batchv1.Job {
	token := stack.Annotations[AnnotationBackupNow]
	if token == "" || (stack.Status.Backups != nil && stack.Status.Backups.HandledRequest == token) {
		return nil // no request, or one already run (status.backups.handledRequest)
	}
	var jobs []*batchv1.Job
	for _, kind := range BackupKinds(stack, src) {
		jobs = append(jobs, OnDemandBackupJob(stack, kind, src, token))
	}
	return jobs
}

// BackupJobLabels select the Jobs (scheduled and on-demand) and pods of one kind.
func BackupJobLabels(stack *authv1alpha1.AuthStack, kind string) map[string]string {
	return SelectorLabels(stack, backupComponent(kind))
}
