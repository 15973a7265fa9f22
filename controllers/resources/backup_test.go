package resources

import (
	"bytes"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The backup CronJobs' pods join the restricted Pod Security table
// (security_test.go) for every stack variant.
func init() {
	for _, kind := range []string{BackupKindPostgres, BackupKindRedis} {
		podRenderers = append(podRenderers, podRenderer{"backup CronJob " + kind, func(s *authv1alpha1.AuthStack, in Inputs) (metav1.ObjectMeta, corev1.PodSpec) {
			s = withBackup(s.DeepCopy())
			cj := BackupCronJob(s, kind, DefaultBackupSources(s, in))
			return cj.Spec.JobTemplate.Spec.Template.ObjectMeta, cj.Spec.JobTemplate.Spec.Template.Spec
		}})
	}
}

var testBackupKey = authv1alpha1.SecretKeyRef{Name: "demo-backup-key", Key: "public.asc"}

// withBackup adds a defaulted spec.backup with S3 credentials.
func withBackup(s *authv1alpha1.AuthStack) *authv1alpha1.AuthStack {
	s.Spec.Backup = &authv1alpha1.BackupSpec{
		Postgres: authv1alpha1.BackupJobSpec{Schedule: "0 3 * * *", RetentionDays: 30},
		Redis:    authv1alpha1.BackupJobSpec{Schedule: "30 */6 * * *", RetentionDays: 7, Suspend: true},
		Destination: authv1alpha1.BackupDestination{S3: authv1alpha1.S3Destination{
			Bucket: "auth-backups", Prefix: "stacks/demo", Endpoint: "https://s3.eu-west-1.amazonaws.com", Region: "eu-west-1",
			CredentialsSecretRef: &authv1alpha1.SecretNameRef{Name: "demo-s3"}, ForcePathStyle: true,
		}},
		Encryption: authv1alpha1.BackupEncryption{PublicKeySecretRef: testBackupKey},
	}
	return s
}

func TestBackupCronJobsOnlyWithSpecBackup(t *testing.T) {
	s := sampleStack()
	for _, kind := range []string{BackupKindPostgres, BackupKindRedis} {
		if cj := BackupCronJob(s, kind, DefaultBackupSources(s, sampleInputs(s))); cj != nil {
			t.Errorf("%s CronJob rendered without spec.backup", kind)
		}
		if j := OnDemandBackupJob(s, kind, DefaultBackupSources(s, sampleInputs(s)), "x"); j != nil {
			t.Errorf("%s Job rendered without spec.backup", kind)
		}
	}
	// Without a Redis URL (managed Redis until the reconciler passes its Secret) no Redis job.
	s = withBackup(sampleStack())
	src := DefaultBackupSources(s, sampleInputs(s))
	src.RedisURL = nil
	if BackupCronJob(s, BackupKindRedis, src) != nil {
		t.Error("Redis backup rendered with no Redis URL")
	}
	if BackupCronJob(s, BackupKindPostgres, src) == nil {
		t.Error("Postgres backup not rendered")
	}
}

func TestBackupCronJob(t *testing.T) {
	s := withBackup(sampleStack())
	in := sampleInputs(s)
	for _, tc := range []struct {
		kind, schedule, retention, urlEnv string
		urlRef                            authv1alpha1.SecretKeyRef
		suspend                           bool
	}{
		{BackupKindPostgres, "0 3 * * *", "30", "DATABASE_URL", authv1alpha1.SecretKeyRef{Name: "demo-db", Key: "url"}, false},
		{BackupKindRedis, "30 */6 * * *", "7", "REDIS_URL", authv1alpha1.SecretKeyRef{Name: "demo-redis", Key: "url"}, true},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			cj := BackupCronJob(s, tc.kind, DefaultBackupSources(s, in))
			if cj == nil {
				t.Fatal("no CronJob")
			}
			if cj.Name != "demo-backup-"+tc.kind || cj.Namespace != testNamespace {
				t.Errorf("name %s/%s", cj.Namespace, cj.Name)
			}
			if len(cj.OwnerReferences) != 1 || cj.OwnerReferences[0].UID != testUID || !*cj.OwnerReferences[0].Controller {
				t.Errorf("owner references %+v", cj.OwnerReferences)
			}
			sp := cj.Spec
			if sp.Schedule != tc.schedule || *sp.Suspend != tc.suspend {
				t.Errorf("schedule %q suspend %v", sp.Schedule, *sp.Suspend)
			}
			if sp.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Errorf("concurrencyPolicy %s", sp.ConcurrencyPolicy)
			}
			if *sp.SuccessfulJobsHistoryLimit != 3 || *sp.FailedJobsHistoryLimit != 3 {
				t.Errorf("history %d/%d", *sp.SuccessfulJobsHistoryLimit, *sp.FailedJobsHistoryLimit)
			}
			if sp.StartingDeadlineSeconds == nil || *sp.StartingDeadlineSeconds != 3600 {
				t.Errorf("startingDeadlineSeconds %v", sp.StartingDeadlineSeconds)
			}
			js := sp.JobTemplate.Spec
			if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds != 6*3600 || js.BackoffLimit == nil || *js.BackoffLimit != 1 {
				t.Errorf("activeDeadlineSeconds %v backoffLimit %v", js.ActiveDeadlineSeconds, js.BackoffLimit)
			}
			if pfp := js.PodFailurePolicy; pfp == nil || len(pfp.Rules) != 1 || pfp.Rules[0].Action != batchv1.PodFailurePolicyActionFailJob ||
				pfp.Rules[0].OnExitCodes == nil || len(pfp.Rules[0].OnExitCodes.Values) != 2 {
				t.Errorf("podFailurePolicy %+v: exit 2 (configuration) and 3 (retention) must not be retried", pfp)
			}
			pod := js.Template.Spec
			if pod.RestartPolicy != corev1.RestartPolicyNever || *pod.AutomountServiceAccountToken {
				t.Errorf("restartPolicy %s automount %v", pod.RestartPolicy, *pod.AutomountServiceAccountToken)
			}
			if js.Template.Labels[LabelComponent] != "backup-"+tc.kind || js.Template.Labels[LabelInstance] != testName {
				t.Errorf("pod labels %v", js.Template.Labels)
			}
			c := container(t, pod, "backup-"+tc.kind)
			if c.Image != testOpImage || strings.Join(c.Args, " ") != "backup "+tc.kind {
				t.Errorf("image %s args %v", c.Image, c.Args)
			}
			if c.TerminationMessagePath != BackupResultFile {
				t.Errorf("terminationMessagePath %s", c.TerminationMessagePath)
			}
			env := envByName(t, c)
			fromSecret := func(name string, want authv1alpha1.SecretKeyRef) {
				t.Helper()
				e, ok := env[name]
				if !ok || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("%s is not from a Secret: %+v", name, e)
					return
				}
				if r := e.ValueFrom.SecretKeyRef; r.Name != want.Name || r.Key != want.Key {
					t.Errorf("%s from %s/%s, want %s/%s", name, r.Name, r.Key, want.Name, want.Key)
				}
			}
			fromSecret(tc.urlEnv, tc.urlRef)
			fromSecret("AWS_ACCESS_KEY_ID", authv1alpha1.SecretKeyRef{Name: "demo-s3", Key: "AWS_ACCESS_KEY_ID"})
			fromSecret("AWS_SECRET_ACCESS_KEY", authv1alpha1.SecretKeyRef{Name: "demo-s3", Key: "AWS_SECRET_ACCESS_KEY"})
			other := map[string]string{BackupKindPostgres: "REDIS_URL", BackupKindRedis: "DATABASE_URL"}[tc.kind]
			if _, ok := env[other]; ok {
				t.Errorf("%s job gets %s: it needs only its own data store", tc.kind, other)
			}
			for name, want := range map[string]string{
				"S3_BUCKET": "auth-backups", "S3_PREFIX": "stacks/demo", "S3_ENDPOINT": "https://s3.eu-west-1.amazonaws.com",
				"S3_REGION": "eu-west-1", "S3_FORCE_PATH_STYLE": "true", "BACKUP_RETENTION_DAYS": tc.retention,
				"BACKUP_PUBLIC_KEY_FILE": "/var/run/authstack/backup-key/public.asc", "BACKUP_RESULT_FILE": "/dev/termination-log",
				"GOMEMLIMIT": "230MiB", // 90 % of the Job's 256Mi, like the authserver's (runtimeEnv)
			} {
				if env[name].Value != want {
					t.Errorf("%s = %q, want %q", name, env[name].Value, want)
				}
			}
			if r := env["GOMAXPROCS"].ValueFrom; r == nil || r.ResourceFieldRef == nil || r.ResourceFieldRef.ContainerName != c.Name || r.ResourceFieldRef.Resource != "limits.cpu" {
				t.Errorf("GOMAXPROCS is not the container's limits.cpu: %+v", env["GOMAXPROCS"])
			}
			// The public key file is the Secret key, mounted read-only where the env says.
			var mounted bool
			for _, m := range c.VolumeMounts {
				if m.Name == "backup-key" && m.MountPath == BackupKeyMountPath && m.ReadOnly {
					mounted = true
				}
			}
			var vol *corev1.SecretVolumeSource
			for _, v := range pod.Volumes {
				if v.Name == "backup-key" {
					vol = v.Secret
				}
			}
			if !mounted || vol == nil || vol.SecretName != testBackupKey.Name || len(vol.Items) != 1 ||
				vol.Items[0].Key != testBackupKey.Key || vol.Items[0].Path != BackupKeyFileName {
				t.Errorf("public key volume %+v mounted %v", vol, mounted)
			}
			// No Secret value is ever rendered.
			b := mustJSON(t, cj)
			for _, v := range testSecretValues {
				if bytes.Contains(b, v) {
					t.Errorf("a Secret value is in the CronJob")
				}
			}
			if !bytes.Equal(b, mustJSON(t, BackupCronJob(s, tc.kind, DefaultBackupSources(s, in)))) {
				t.Error("rendering is not deterministic")
			}
		})
	}
}

func TestBackupCronJobDefaultsAndOptionalFields(t *testing.T) {
	s := withBackup(sampleStack())
	s.Spec.Backup.Postgres = authv1alpha1.BackupJobSpec{} // as if the CRD defaults were absent
	s.Spec.Backup.Destination.S3.CredentialsSecretRef = nil
	s.Spec.AuthServer.Image = testImage
	cj := BackupCronJob(s, BackupKindPostgres, DefaultBackupSources(s, sampleInputs(s)))
	if cj.Spec.Schedule != "0 3 * * *" || *cj.Spec.Suspend {
		t.Errorf("schedule %q suspend %v", cj.Spec.Schedule, *cj.Spec.Suspend)
	}
	c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	if c.Image != testImage {
		t.Errorf("image %s, want the stack's %s", c.Image, testImage)
	}
	env := envByName(t, c)
	if env["BACKUP_RETENTION_DAYS"].Value != "30" {
		t.Errorf("retention %q", env["BACKUP_RETENTION_DAYS"].Value)
	}
	for _, n := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if _, ok := env[n]; ok {
			t.Errorf("%s set without credentialsSecretRef (the pod identity must be used)", n)
		}
	}
}

func TestBackupNamesFitKubernetesLimits(t *testing.T) {
	s := withBackup(sampleStack())
	s.Name = strings.Repeat("a-very-long-stack-name", 5)
	other := withBackup(sampleStack())
	other.Name = s.Name + "x"
	for _, kind := range []string{BackupKindPostgres, BackupKindRedis} {
		n := BackupCronJobName(s, kind)
		if len(n) > 52 || validation.IsDNS1123Subdomain(n) != nil {
			t.Errorf("CronJob name %q (%d chars) is not valid for a CronJob", n, len(n))
		}
		if n == BackupCronJobName(other, kind) {
			t.Errorf("two stacks get the same CronJob name %q", n)
		}
		j := OnDemandBackupJobName(s, kind, "2026-11-28T10:00:00Z")
		if len(j) > 63 || validation.IsDNS1123Label(j) != nil {
			t.Errorf("Job name %q (%d chars) is not a valid label (Jobs label their pods with it)", j, len(j))
		}
	}
	if BackupCronJobName(s, BackupKindPostgres) == BackupCronJobName(s, BackupKindRedis) {
		t.Error("postgres and redis CronJobs share a name")
	}
}

func TestOnDemandBackupJob(t *testing.T) {
	s := withBackup(sampleStack())
	src := DefaultBackupSources(s, sampleInputs(s))
	j1 := OnDemandBackupJob(s, BackupKindPostgres, src, "2026-11-28T10:00:00Z")
	j2 := OnDemandBackupJob(s, BackupKindPostgres, src, "2026-11-28T11:00:00Z")
	if j1.Name == j2.Name || !strings.HasPrefix(j1.Name, "demo-backup-postgres-now-") {
		t.Errorf("names %s %s", j1.Name, j2.Name)
	}
	if j1.Name != OnDemandBackupJob(s, BackupKindPostgres, src, "2026-11-28T10:00:00Z").Name {
		t.Error("the same token must give the same Job (so it runs once)")
	}
	if j1.Annotations[AnnotationBackupNow] != "2026-11-28T10:00:00Z" || len(j1.OwnerReferences) != 1 {
		t.Errorf("annotations %v owners %v", j1.Annotations, j1.OwnerReferences)
	}
	// The scheduled Jobs are bounded by the CronJob's history limits; a one-off Job by its TTL.
	cj := BackupCronJob(s, BackupKindPostgres, src)
	spec := j1.Spec.DeepCopy()
	spec.TTLSecondsAfterFinished = nil
	if !bytes.Equal(mustJSON(t, spec), mustJSON(t, cj.Spec.JobTemplate.Spec)) {
		t.Error("the on-demand Job differs from the scheduled one (but for its TTL)")
	}
}

func TestDefaultBackupSourcesFollowTheDataTier(t *testing.T) {
	conn := func(key string) string { return "demo-connection/" + key }
	ref := func(r *authv1alpha1.SecretKeyRef) string {
		if r == nil {
			return ""
		}
		return r.Name + "/" + r.Key
	}
	for _, tc := range []struct {
		name      string
		mutate    func(*authv1alpha1.AuthStack)
		db, redis string
	}{
		{"external database and Redis", func(*authv1alpha1.AuthStack) {}, "demo-db/url", "demo-redis/url"},
		{"external database behind the pooler: still the database itself", func(s *authv1alpha1.AuthStack) {
			s.Spec.Pooler.Enabled = ptr.To(true)
		}, "demo-db/url", "demo-redis/url"},
		{"managed database with pooler", func(s *authv1alpha1.AuthStack) {
			s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
			s.Spec.Pooler.Enabled = ptr.To(true)
		}, conn(ConnectionDatabaseDirectURLKey), "demo-redis/url"},
		{"managed database without pooler", func(s *authv1alpha1.AuthStack) {
			s.Spec.Database = authv1alpha1.DatabaseSpec{Managed: &authv1alpha1.ManagedDatabaseSpec{}}
			s.Spec.Pooler.Enabled = ptr.To(false)
		}, conn(ConnectionDatabaseURLKey), "demo-redis/url"},
		{"managed standalone Redis", func(s *authv1alpha1.AuthStack) {
			s.Spec.Redis = authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisStandalone}
		}, "demo-db/url", conn(ConnectionRedisURLKey)},
		{"managed Redis Cluster: no Redis backup", func(s *authv1alpha1.AuthStack) {
			s.Spec.Redis = authv1alpha1.RedisSpec{Mode: authv1alpha1.RedisCluster}
		}, "demo-db/url", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := withBackup(sampleStack())
			tc.mutate(s)
			src := DefaultBackupSources(s, sampleInputs(s))
			if ref(src.DatabaseURL) != tc.db || ref(src.RedisURL) != tc.redis {
				t.Errorf("database %q redis %q, want %q %q", ref(src.DatabaseURL), ref(src.RedisURL), tc.db, tc.redis)
			}
		})
	}
}

// TestOnDemandBackupRunsOnce: a request already recorded in status is not rendered
// again, a new value is, and every one-off Job has a TTL.
func TestOnDemandBackupRunsOnce(t *testing.T) {
	s := withBackup(sampleStack())
	s.Annotations = map[string]string{AnnotationBackupNow: "r1"}
	src := DefaultBackupSources(s, sampleInputs(s))
	jobs := OnDemandBackupJobs(s, src)
	if len(jobs) == 0 {
		t.Fatal("no Job for a new request")
	}
	for _, j := range jobs {
		if ttl := j.Spec.TTLSecondsAfterFinished; ttl == nil || *ttl != OnDemandBackupTTLSeconds {
			t.Errorf("Job %s TTL %v, want %d", j.Name, ttl, OnDemandBackupTTLSeconds)
		}
	}
	s.Status.Backups = &authv1alpha1.BackupsStatus{HandledRequest: "r1"}
	if jobs := OnDemandBackupJobs(s, src); jobs != nil {
		t.Errorf("a handled request renders %d Jobs again", len(jobs))
	}
	s.Annotations[AnnotationBackupNow] = "r2"
	if jobs := OnDemandBackupJobs(s, src); len(jobs) == 0 {
		t.Error("a new request after a handled one renders no Job")
	}
}
