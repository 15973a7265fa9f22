package resources

import (
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/backup/result"
)

// The restore Job's pod joins the restricted Pod Security table (security_test.go).
func init() {
	podRenderers = append(podRenderers, podRenderer{"restore Job", func(s *authv1alpha1.AuthStack, in Inputs) (metav1.ObjectMeta, corev1.PodSpec) {
		s = withRestore(withBackup(s.DeepCopy()), "latest")
		j := RestoreJob(s, DefaultBackupSources(s, in), in)
		return j.Spec.Template.ObjectMeta, j.Spec.Template.Spec
	}})
}

// withRestore declares a restore of object (and the private key it needs).
func withRestore(s *authv1alpha1.AuthStack, object string) *authv1alpha1.AuthStack {
	s.Spec.Backup.Encryption.PrivateKeySecretRef = &testPrivateKey
	s.Spec.Bootstrap = &authv1alpha1.BootstrapSpec{FromBackup: &authv1alpha1.FromBackupSpec{Object: object}}
	return s
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

func TestRestoreJobOnlyWhenDeclared(t *testing.T) {
	s := withBackup(sampleStack())
	if j := RestoreJob(s, DefaultBackupSources(s, sampleInputs(s)), sampleInputs(s)); j != nil {
		t.Fatal("restore Job rendered without spec.bootstrap.fromBackup")
	}
	s = withRestore(s, "latest")
	src := DefaultBackupSources(s, sampleInputs(s))
	src.DatabaseURL = nil
	if RestoreJob(s, src, sampleInputs(s)) != nil {
		t.Fatal("restore Job rendered without a database URL")
	}
}

func TestRestoreJob(t *testing.T) {
	s := withRestore(withBackup(sampleStack()), "latest")
	in := sampleInputs(s)
	j := RestoreJob(s, DefaultBackupSources(s, in), in)
	if errs := validation.IsDNS1123Label(j.Name); len(errs) > 0 || !strings.HasPrefix(j.Name, "demo-restore-") {
		t.Fatalf("name %q: %v", j.Name, errs)
	}
	c := j.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"restore", "postgres", "--once"}) {
		t.Errorf("args %v: latest passes no --object", c.Args)
	}
	env := envOf(c)
	for name, ref := range map[string]authv1alpha1.SecretKeyRef{
		"DATABASE_URL":          *DefaultBackupSources(s, in).DatabaseURL, // the database itself, never the pooler
		"REDIS_URL":             AuthServerRedisURL(s),                    // the cache the authserver reads
		"AWS_ACCESS_KEY_ID":     {Name: "demo-s3", Key: "AWS_ACCESS_KEY_ID"},
		"AWS_SECRET_ACCESS_KEY": {Name: "demo-s3", Key: "AWS_SECRET_ACCESS_KEY"},
	} {
		e := env[name]
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != ref.Name || e.ValueFrom.SecretKeyRef.Key != ref.Key || e.Value != "" {
			t.Errorf("%s: %+v, want Secret %v", name, e, ref)
		}
	}
	for name, want := range map[string]string{
		"S3_BUCKET": "auth-backups", "S3_PREFIX": "stacks/demo", "S3_FORCE_PATH_STYLE": "true",
		"BACKUP_PRIVATE_KEY_FILE": RestoreKeyMountPath + "/private.asc", "AUTH_PEPPER_FILE": PepperMountPath + "/" + PepperFileName,
		"AUTH_PEPPER_SOURCE": in.Pepper.Name, "BACKUP_RESULT_FILE": BackupResultFile, "TMPDIR": RestoreWorkPath,
	} {
		if env[name].Value != want {
			t.Errorf("%s = %q, want %q", name, env[name].Value, want)
		}
	}
	if _, ok := env["BACKUP_PRIVATE_KEY_PASSPHRASE_FILE"]; ok {
		t.Error("passphrase file without passphraseSecretRef")
	}
	// The private key and the pepper are mounted; the work directory is on disk, not in memory.
	vols := map[string]corev1.Volume{}
	for _, v := range j.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	if p := vols["restore-key"].Projected; p == nil || p.Sources[0].Secret.Name != testPrivateKey.Name || p.Sources[0].Secret.Items[0].Key != testPrivateKey.Key {
		t.Errorf("restore-key volume %+v", vols["restore-key"])
	}
	if sv := vols["pepper"].Secret; sv == nil || sv.SecretName != in.Pepper.Name || sv.Items[0].Key != in.Pepper.Key {
		t.Errorf("pepper volume %+v", vols["pepper"])
	}
	if ed := vols["work"].EmptyDir; ed == nil || ed.Medium != "" {
		t.Errorf("work volume %+v", vols["work"])
	}
	// A refusal (4) or bad configuration (2) fails the Job at once.
	r := j.Spec.PodFailurePolicy.Rules[0]
	if r.Action != batchv1.PodFailurePolicyActionFailJob || !slices.Equal(r.OnExitCodes.Values, []int32{2, RestoreRefusedExitCode}) {
		t.Errorf("pod failure policy %+v", r)
	}
	if j.Spec.TTLSecondsAfterFinished != nil {
		t.Error("a restore Job must stay: it is the record of the restore while status is lost")
	}

	// A named object, another bucket, a passphrase.
	s.Spec.Bootstrap.FromBackup.Object = "old/postgres/20261128T030000Z.dump.gz.gpg"
	s.Spec.Bootstrap.FromBackup.Source = &authv1alpha1.BackupDestination{S3: authv1alpha1.S3Destination{Bucket: "other-bucket", Prefix: "old"}}
	s.Spec.Backup.Encryption.PassphraseSecretRef = &authv1alpha1.SecretKeyRef{Name: "pp", Key: "passphrase"}
	j2 := RestoreJob(s, DefaultBackupSources(s, in), in)
	c = j2.Spec.Template.Spec.Containers[0]
	env = envOf(c)
	if !slices.Equal(c.Args, []string{"restore", "postgres", "--once", "--object", "old/postgres/20261128T030000Z.dump.gz.gpg"}) ||
		env["S3_BUCKET"].Value != "other-bucket" || env["S3_PREFIX"].Value != "old" || env["S3_ENDPOINT"].Value != "" ||
		env["BACKUP_PRIVATE_KEY_PASSPHRASE_FILE"].Value != RestoreKeyMountPath+"/passphrase" {
		t.Errorf("args %v, env %v", c.Args, env)
	}
	if _, ok := env["AWS_ACCESS_KEY_ID"]; ok {
		t.Error("the source bucket has no credentials: the pod identity is used, not the destination's")
	}
	if j2.Name == j.Name {
		t.Error("another restore has the same Job name")
	}
	// During a pepper rotation the old peppers verify too: a backup may predate the current one.
	in3 := in
	in3.PepperMounts = PepperMounts{Version: 2, Old: []PepperVersion{{Version: 1, Ref: authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}}}}
	c = RestoreJob(s, DefaultBackupSources(s, in3), in3).Spec.Template.Spec.Containers[0]
	if envOf(c)["AUTH_OLD_PEPPERS_FILE"].Value != OldPeppersMountPath+"/v1" {
		t.Errorf("old peppers not given to the restore: %v", envOf(c)["AUTH_OLD_PEPPERS_FILE"])
	}
	// Another pepper value (the ConfigHash) is another Job: a fixed pepper retries.
	in2 := in
	in2.ConfigHash = "another"
	if RestoreJob(s, DefaultBackupSources(s, in2), in2).Name == j2.Name {
		t.Error("the Job name ignores the pepper's value")
	}
}

// The backup CronJobs never mount the private key: they cannot read old backups.
func TestBackupCronJobsNeverMountThePrivateKey(t *testing.T) {
	s := withRestore(withBackup(sampleStack()), "latest")
	s.Spec.Backup.Encryption.PassphraseSecretRef = &authv1alpha1.SecretKeyRef{Name: "pp", Key: "passphrase"}
	src := DefaultBackupSources(s, sampleInputs(s))
	for _, kind := range []string{BackupKindPostgres, BackupKindRedis} {
		pod := BackupCronJob(s, kind, src).Spec.JobTemplate.Spec.Template.Spec
		for _, v := range pod.Volumes {
			if v.Secret != nil && (v.Secret.SecretName == testPrivateKey.Name || v.Secret.SecretName == "pp") {
				t.Errorf("%s CronJob mounts %q", kind, v.Secret.SecretName)
			}
		}
		for _, e := range pod.Containers[0].Env {
			if strings.Contains(e.Name, "PRIVATE") || (e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == testPrivateKey.Name) {
				t.Errorf("%s CronJob has %s", kind, e.Name)
			}
		}
	}
}

func restoreJobWith(name string, cond batchv1.JobConditionType, at time.Time) batchv1.Job {
	j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}}
	j.Status.StartTime = &metav1.Time{Time: at.Add(-time.Minute)}
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Time{Time: at}, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}}
	}
	return j
}

func restorePod(job string, r result.Result, at time.Time) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: job + "-x", Labels: map[string]string{batchv1.JobNameLabel: job}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: ComponentRestore, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{Message: string(r.Line()), FinishedAt: metav1.Time{Time: at}}}}}}}
}

func TestRestoreProgress(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	obj := "p/postgres/20261128T030000Z.dump.gz.gpg"
	mismatch := "backup " + obj + ", nothing restored: pepper mismatch: ... restore Secret \"demo-pepper\" ..."
	cases := []struct {
		name       string
		prev       *authv1alpha1.RestoreStatus
		jobs       []batchv1.Job
		pods       []corev1.Pod
		phase      string
		reason     string
		create     bool
		wantObject string
		msgHas     string
	}{
		{name: "no Job yet: create it", phase: authv1alpha1.RestorePending, reason: authv1alpha1.ReasonRestorePending, create: true},
		{name: "running", jobs: []batchv1.Job{restoreJobWith("cur", "", now)}, phase: authv1alpha1.RestoreRunning, reason: authv1alpha1.ReasonRestoreRunning},
		{name: "an older Job still running: no second one", jobs: []batchv1.Job{restoreJobWith("old", "", now)}, phase: authv1alpha1.RestoreRunning, reason: authv1alpha1.ReasonRestoreRunning},
		{name: "succeeded", jobs: []batchv1.Job{restoreJobWith("cur", batchv1.JobComplete, now)},
			pods:  []corev1.Pod{restorePod("cur", result.Result{Kind: "postgres", OK: true, Object: obj}, now)},
			phase: authv1alpha1.RestoreSucceeded, reason: authv1alpha1.ReasonRestoreSucceeded, wantObject: obj},
		{name: "succeeded, pod gone", jobs: []batchv1.Job{restoreJobWith("cur", batchv1.JobComplete, now)},
			phase: authv1alpha1.RestoreSucceeded, reason: authv1alpha1.ReasonRestoreSucceeded},
		{name: "an older Job succeeded (the pepper Secret changed since)", jobs: []batchv1.Job{restoreJobWith("old", batchv1.JobComplete, now)},
			phase: authv1alpha1.RestoreSucceeded, reason: authv1alpha1.ReasonRestoreSucceeded},
		{name: "already restored (status was lost)", jobs: []batchv1.Job{restoreJobWith("cur", batchv1.JobComplete, now)},
			pods:  []corev1.Pod{restorePod("cur", result.Result{Kind: "postgres", OK: true, Object: obj, Reason: result.RestoreAlreadyRestored}, now)},
			phase: authv1alpha1.RestoreSucceeded, reason: authv1alpha1.ReasonRestoreSucceeded, wantObject: obj, msgHas: "already held"},
		{name: "pepper mismatch", jobs: []batchv1.Job{restoreJobWith("cur", batchv1.JobFailed, now)},
			pods:  []corev1.Pod{restorePod("cur", result.Result{Kind: "postgres", Object: obj, Reason: result.RestorePepperMismatch, Error: mismatch}, now)},
			phase: authv1alpha1.RestoreFailed, reason: authv1alpha1.ReasonPepperMismatch, wantObject: obj, msgHas: `Secret "demo-pepper"`},
		{name: "target not empty", jobs: []batchv1.Job{restoreJobWith("cur", batchv1.JobFailed, now)},
			pods:  []corev1.Pod{restorePod("cur", result.Result{Kind: "postgres", Reason: result.RestoreTargetNotEmpty, Error: "target database is not empty: ..."}, now)},
			phase: authv1alpha1.RestoreFailed, reason: authv1alpha1.ReasonTargetNotEmpty, msgHas: "delete the Job cur"},
		{name: "failed without a result line", jobs: []batchv1.Job{restoreJobWith("cur", batchv1.JobFailed, now)},
			phase: authv1alpha1.RestoreFailed, reason: authv1alpha1.ReasonRestoreFailed, msgHas: "backoff limit"},
		{name: "an older Job failed, the current one is new: create it", jobs: []batchv1.Job{restoreJobWith("old", batchv1.JobFailed, now)},
			phase: authv1alpha1.RestorePending, reason: authv1alpha1.ReasonRestorePending, create: true},
		{name: "succeeded is final, whatever the Jobs say", prev: &authv1alpha1.RestoreStatus{Phase: authv1alpha1.RestoreSucceeded, Object: obj},
			jobs: []batchv1.Job{restoreJobWith("cur", batchv1.JobFailed, now)}, phase: authv1alpha1.RestoreSucceeded, reason: authv1alpha1.ReasonRestoreSucceeded, wantObject: obj},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, reason, create := RestoreProgress(tc.prev, "cur", tc.jobs, tc.pods)
			if st.Phase != tc.phase || reason != tc.reason || create != tc.create || st.Object != tc.wantObject || !strings.Contains(st.Message, tc.msgHas) {
				t.Fatalf("got %+v reason %q create %v", st, reason, create)
			}
		})
	}
}
