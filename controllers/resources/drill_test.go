package resources

import (
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/backup"
	"github.com/leanauth/authstack/authserver/backup/result"
)

// The drill's pod joins the restricted Pod Security table (security_test.go).
func init() {
	podRenderers = append(podRenderers, podRenderer{"restore drill CronJob", func(s *authv1alpha1.AuthStack, in Inputs) (metav1.ObjectMeta, corev1.PodSpec) {
		s = withDrill(withBackup(s.DeepCopy()))
		cj := DrillCronJob(s, DefaultBackupSources(s, in))
		return cj.Spec.JobTemplate.Spec.Template.ObjectMeta, cj.Spec.JobTemplate.Spec.Template.Spec
	}})
}

var testPrivateKey = authv1alpha1.SecretKeyRef{Name: "demo-backup-private", Key: "private.asc"}

func withDrill(s *authv1alpha1.AuthStack) *authv1alpha1.AuthStack {
	s.Spec.Backup.Verify = &authv1alpha1.DrillSpec{Schedule: "0 5 * * *"}
	s.Spec.Backup.Encryption.PrivateKeySecretRef = &testPrivateKey
	return s
}

func TestDrillCronJobOnlyWhenAsked(t *testing.T) {
	s := withBackup(sampleStack())
	if DrillCronJob(s, DefaultBackupSources(s, sampleInputs(s))) != nil {
		t.Error("drill rendered without spec.backup.verify")
	}
	s.Spec.Backup.Verify = &authv1alpha1.DrillSpec{}
	if DrillCronJob(s, DefaultBackupSources(s, sampleInputs(s))) != nil {
		t.Error("drill rendered without the private key")
	}
	s = withDrill(s)
	src := DefaultBackupSources(s, sampleInputs(s))
	src.DatabaseURL = nil
	if DrillCronJob(s, src) != nil {
		t.Error("drill rendered without a database URL")
	}
}

func TestDrillCronJob(t *testing.T) {
	s := withDrill(withBackup(sampleStack()))
	in := sampleInputs(s)
	cj := DrillCronJob(s, DefaultBackupSources(s, in))
	if cj.Name != "demo-backup-verify" || cj.Spec.Schedule != "0 5 * * *" || *cj.Spec.Suspend ||
		cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || cj.Labels[LabelComponent] != ComponentBackupVerify {
		t.Fatalf("CronJob %s: %+v", cj.Name, cj.Spec)
	}
	js := cj.Spec.JobTemplate.Spec
	if *js.BackoffLimit != 0 || *js.ActiveDeadlineSeconds != DrillActiveDeadlineSec {
		t.Errorf("job spec: backoff %d, deadline %d", *js.BackoffLimit, *js.ActiveDeadlineSeconds)
	}
	// Killed at the deadline, it must not outlive the scratch database's stale age.
	if time.Duration(DrillActiveDeadlineSec)*time.Second >= backup.ScratchStaleAfter {
		t.Error("a running drill's scratch database could be dropped as stale")
	}
	pod := js.Template.Spec
	c := pod.Containers[0]
	if strings.Join(c.Args, " ") != "backup verify" || c.Image != testOpImage || c.TerminationMessagePath != BackupResultFile {
		t.Errorf("container %s %v %s", c.Image, c.Args, c.TerminationMessagePath)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if r := env["DATABASE_URL"].ValueFrom; r == nil || r.SecretKeyRef.Name != "demo-db" {
		t.Errorf("DATABASE_URL %+v", env["DATABASE_URL"])
	}
	for name, want := range map[string]string{
		"BACKUP_PRIVATE_KEY_FILE": DrillKeyMountPath + "/private.asc", "AUTH_PEPPER_FILE": PepperMountPath + "/pepper",
		"S3_BUCKET": "auth-backups", "S3_PREFIX": "stacks/demo", "BACKUP_RESULT_FILE": BackupResultFile, "TMPDIR": "/var/lib/authstack-drill",
	} {
		if env[name].Value != want {
			t.Errorf("%s = %q, want %q", name, env[name].Value, want)
		}
	}
	if _, ok := env["BACKUP_PUBLIC_KEY_FILE"]; ok {
		t.Error("the drill gets the public key: it only decrypts")
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	if v := vols["backup-private-key"].Secret; v == nil || v.SecretName != testPrivateKey.Name || v.Items[0].Key != testPrivateKey.Key {
		t.Errorf("private key volume %+v", vols["backup-private-key"])
	}
	if v := vols["pepper"].Secret; v == nil || v.SecretName != in.Pepper.Name {
		t.Errorf("pepper volume %+v", vols["pepper"])
	}
	if v := vols["work"].EmptyDir; v == nil || v.Medium == corev1.StorageMediumMemory {
		t.Errorf("the dump's work volume must be on disk: %+v", vols["work"])
	}

	// The backup CronJobs never see the private key.
	for _, kind := range []string{BackupKindPostgres, BackupKindRedis} {
		b := BackupCronJob(s, kind, DefaultBackupSources(s, in))
		for _, v := range b.Spec.JobTemplate.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == testPrivateKey.Name {
				t.Errorf("the %s backup mounts the private key", kind)
			}
		}
	}

	// A passphrase in another Secret: one projected volume holds both files.
	s.Spec.Backup.Encryption.PassphraseSecretRef = &authv1alpha1.SecretKeyRef{Name: "demo-pass", Key: "pw"}
	s.Spec.Backup.Verify.Suspend = true
	cj = DrillCronJob(s, DefaultBackupSources(s, in))
	if !*cj.Spec.Suspend {
		t.Error("suspend not passed on")
	}
	var proj *corev1.ProjectedVolumeSource
	for _, v := range cj.Spec.JobTemplate.Spec.Template.Spec.Volumes {
		if v.Name == "backup-private-key" {
			proj = v.Projected
		}
	}
	if proj == nil || len(proj.Sources) != 2 || proj.Sources[1].Secret.Name != "demo-pass" || proj.Sources[1].Secret.Items[0].Path != DrillPassphraseFile {
		t.Fatalf("passphrase volume %+v", proj)
	}
	found := false
	for _, e := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Env {
		found = found || (e.Name == "BACKUP_PRIVATE_KEY_PASSPHRASE_FILE" && e.Value == DrillKeyMountPath+"/"+DrillPassphraseFile)
	}
	if !found {
		t.Error("no BACKUP_PRIVATE_KEY_PASSPHRASE_FILE")
	}
}

func drillJob(name string, ok bool, at time.Time, reason string) batchv1.Job {
	j := finishedJob(name, ok, at, reason)
	j.Labels = map[string]string{LabelComponent: ComponentBackupVerify}
	return j
}

func drillPod(job, msg string, at time.Time) corev1.Pod {
	p := podWithResult(msg, at)
	p.Labels = map[string]string{batchv1.JobNameLabel: job}
	p.Status.ContainerStatuses[0].Name = ComponentBackupVerify
	return p
}

// TestDrillStatusReadsWhatTheDrillWrites: the drill's own result lines
// (backup.DrillResultOf), read back from the termination message.
func TestDrillStatusReadsWhatTheDrillWrites(t *testing.T) {
	const object = "stacks/demo/postgres/20261128T030000Z.dump.gz.gpg"
	bt := backupT0
	good := backup.VerifyResult{Object: object, BackupTime: bt, Restore: 14 * time.Second, Tables: 9, Rows: 321}
	cases := []struct {
		name    string
		res     backup.VerifyResult
		err     error
		jobOK   bool
		reason  string
		wantMsg string
	}{
		{"passed", good, nil, true, authv1alpha1.ReasonDrillSucceeded, "321 rows in 9 tables"},
		{"corrupted", backup.VerifyResult{Object: object, BackupTime: bt},
			&backup.DrillError{Reason: result.ReasonBackupUnreadable, Err: errors.New("gzip: invalid checksum; try an older one")}, false,
			result.ReasonBackupUnreadable, "try an older one"},
		{"unclassified", backup.VerifyResult{}, errors.New("cannot reach S3"), false, authv1alpha1.ReasonDrillFailed, "cannot reach S3"},
	}
	for _, tc := range cases {
		line := backup.DrillResultOf(tc.res, tc.err).Line()
		job := drillJob("demo-backup-verify-1", tc.jobOK, backupT0.Add(2*time.Hour), "BackoffLimitExceeded")
		run, finished := DrillRunFromJob(&job, []corev1.Pod{drillPod(job.Name, string(line), backupT0.Add(2*time.Hour))})
		if !finished || run.Succeeded != tc.jobOK || run.Reason != tc.reason || !strings.Contains(run.Message, tc.wantMsg) {
			t.Errorf("%s: %+v", tc.name, run)
		}
		if tc.res.Object != "" && (run.Object != object || run.BackupTime == nil || !run.BackupTime.Time.Equal(bt)) {
			t.Errorf("%s: backup facts %+v", tc.name, run)
		}
	}
	// Killed at the deadline, no result written: the Job's reason, DrillFailed.
	job := drillJob("demo-backup-verify-2", false, backupT0, "DeadlineExceeded")
	run, _ := DrillRunFromJob(&job, nil)
	if run.Succeeded || run.Reason != authv1alpha1.ReasonDrillFailed || !strings.Contains(run.Message, "DeadlineExceeded") {
		t.Errorf("killed: %+v", run)
	}
	// A Job that completed but whose result says it failed is a failure.
	job = drillJob("demo-backup-verify-3", true, backupT0, "")
	run, _ = DrillRunFromJob(&job, []corev1.Pod{drillPod(job.Name, `{"kind":"verify","ok":false,"reason":"RowCountMismatch","error":"x"}`, backupT0)})
	if run.Succeeded || run.Reason != result.ReasonRowCountMismatch {
		t.Errorf("completed with a failed result: %+v", run)
	}
}

func TestRestoreVerifiedCondition(t *testing.T) {
	s := withDrill(withBackup(sampleStack()))
	t0 := backupT0.Add(2 * time.Hour)
	okLine := string(backup.DrillResultOf(backup.VerifyResult{Object: "k", BackupTime: backupT0, Restore: 14 * time.Second, Tables: 2, Rows: 3}, nil).Line())
	badLine := string(backup.DrillResultOf(backup.VerifyResult{Object: "k"}, &backup.DrillError{Reason: result.ReasonCanaryMismatch, Err: errors.New("pepper")}).Line())
	pass := drillJob("d-1", true, t0, "")
	fail := drillJob("d-2", false, t0.Add(24*time.Hour), "BackoffLimitExceeded")
	pods := []corev1.Pod{drillPod("d-1", okLine, t0), drillPod("d-2", badLine, t0.Add(24*time.Hour))}

	st := DrillStatusFromJobs(nil, []batchv1.Job{pass}, pods)
	c, ok := RestoreVerifiedCondition(s, st, backupT0, t0.Add(time.Hour))
	if !ok || c.Status != metav1.ConditionTrue || c.Reason != authv1alpha1.ReasonDrillSucceeded {
		t.Fatalf("after a pass: %+v", c)
	}
	for _, want := range []string{"backup k", "restored in 14s", "2h0m0s old at the drill", "Data-loss window", "up to 24h0m0s"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q lacks %q", c.Message, want)
		}
	}
	// A later failure wins; the pass stays in lastSuccessfulDrill.
	st = DrillStatusFromJobs(st, []batchv1.Job{fail}, pods)
	c, _ = RestoreVerifiedCondition(s, st, backupT0, t0.Add(25*time.Hour))
	if c.Status != metav1.ConditionFalse || c.Reason != result.ReasonCanaryMismatch || st.LastSuccessfulDrill.Job != "d-1" || st.LastDrill.Job != "d-2" {
		t.Errorf("after a failure: %+v, %+v", c, st)
	}
	// No drill yet: Unknown, then overdue after twice the interval.
	c, _ = RestoreVerifiedCondition(s, nil, t0, t0.Add(time.Hour))
	if c.Status != metav1.ConditionUnknown || c.Reason != authv1alpha1.ReasonAwaitingFirstDrill {
		t.Errorf("before the first drill: %+v", c)
	}
	c, _ = RestoreVerifiedCondition(s, nil, t0, t0.Add(49*time.Hour))
	if c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonDrillOverdue {
		t.Errorf("no drill in 49h: %+v", c)
	}
	s.Spec.Backup.Verify = nil
	if _, ok := RestoreVerifiedCondition(s, st, t0, t0); ok {
		t.Error("condition kept without spec.backup.verify")
	}
}

// TestDrillCronJobGetsOldPeppers: during a pepper rotation the newest backup may hold
// a canary made with the previous pepper; the drill verifies with every pepper the
// pods still accept, like the authserver and the restore Job.
func TestDrillCronJobGetsOldPeppers(t *testing.T) {
	s := withDrill(withBackup(sampleStack()))
	in := sampleInputs(s)
	in.Pepper = authv1alpha1.SecretKeyRef{Name: "demo-pepper-v2", Key: "pepper"}
	in.PepperMounts = PepperMounts{Version: 2, Old: []PepperVersion{{Version: 1, Ref: authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}}}}
	pod := DrillCronJob(s, DefaultBackupSources(s, in)).Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	var oldFile string
	for _, e := range c.Env {
		if e.Name == "AUTH_OLD_PEPPERS_FILE" {
			oldFile = e.Value
		}
	}
	if oldFile != OldPeppersMountPath+"/v1" {
		t.Fatalf("AUTH_OLD_PEPPERS_FILE %q, want %s/v1", oldFile, OldPeppersMountPath)
	}
	var mounted, projected bool
	for _, m := range c.VolumeMounts {
		mounted = mounted || (m.Name == "old-peppers" && m.MountPath == OldPeppersMountPath)
	}
	for _, v := range pod.Volumes {
		if v.Name == "old-peppers" && v.Projected != nil && len(v.Projected.Sources) == 1 {
			projected = v.Projected.Sources[0].Secret.Name == "demo-pepper"
		}
		if v.Name == "pepper" && v.Secret.SecretName != "demo-pepper-v2" {
			t.Errorf("current pepper from %s, want demo-pepper-v2", v.Secret.SecretName)
		}
	}
	if !mounted || !projected {
		t.Errorf("old peppers mounted %v, projected from demo-pepper %v", mounted, projected)
	}
}

// The drill and a restore of latest in place get the newest backup the stack
// recorded (BACKUP_EXPECT_NEWEST): one deleted from the bucket then fails the run
// (authserver/backup TestDeletedNewestBackupIsNoticed) instead of an older one
// being used. Not before the first backup, not for a named object, another
// bucket or a key under another prefix (the prefix changed since).
func TestExpectNewestBackup(t *testing.T) {
	const newest = "stacks/demo/postgres/20261130T030000Z.dump.gz.gpg"
	expect := func(s *authv1alpha1.AuthStack) (drill, restore string) {
		in := sampleInputs(s)
		if cj := DrillCronJob(s, DefaultBackupSources(s, in)); cj != nil {
			drill = envOf(cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0])["BACKUP_EXPECT_NEWEST"].Value
		}
		if j := RestoreJob(s, DefaultBackupSources(s, in), in); j != nil {
			restore = envOf(j.Spec.Template.Spec.Containers[0])["BACKUP_EXPECT_NEWEST"].Value
		}
		return drill, restore
	}
	recorded := func(key string) *authv1alpha1.AuthStack {
		s := withRestore(withDrill(withBackup(sampleStack())), "latest")
		s.Status.Backups = &authv1alpha1.BackupsStatus{Postgres: authv1alpha1.BackupKindStatus{
			LastSuccess: &authv1alpha1.BackupRun{Job: "demo-backup-postgres-1", Object: key}}}
		return s
	}
	if d, r := expect(withRestore(withDrill(withBackup(sampleStack())), "latest")); d != "" || r != "" {
		t.Errorf("no backup recorded: drill %q, restore %q", d, r)
	}
	if d, r := expect(recorded(newest)); d != newest || r != newest {
		t.Errorf("backup recorded: drill %q, restore %q; want %s", d, r, newest)
	}
	s := recorded(newest)
	s.Spec.Bootstrap.FromBackup.Object = "stacks/demo/postgres/20261129T030000Z.dump.gz.gpg"
	if _, r := expect(s); r != "" {
		t.Errorf("named object: restore expects %q", r)
	}
	s = recorded(newest)
	s.Spec.Bootstrap.FromBackup.Source = &authv1alpha1.BackupDestination{S3: s.Spec.Backup.Destination.S3}
	s.Spec.Bootstrap.FromBackup.Source.S3.Bucket = "other-stack-backups"
	if _, r := expect(s); r != "" {
		t.Errorf("restore from another bucket expects %q", r)
	}
	s = recorded(newest)
	s.Spec.Backup.Destination.S3.Prefix = "stacks/demo-2/"
	if d, _ := expect(s); d != "" {
		t.Errorf("prefix changed: drill expects %q", d)
	}
	if d, _ := expect(recorded("stacks/demo/postgres/x/20261130T030000Z.dump.gz.gpg")); d != "" {
		t.Errorf("a key below another folder: drill expects %q", d)
	}
}

// drillExpects is the drill CronJob's BACKUP_EXPECT_NEWEST.
func drillExpects(s *authv1alpha1.AuthStack) string {
	cj := DrillCronJob(s, DefaultBackupSources(s, sampleInputs(s)))
	if cj == nil {
		return "<no drill>"
	}
	return envOf(cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0])["BACKUP_EXPECT_NEWEST"].Value
}

// The expectation is the backup holding the newest data: of the recorded
// successes, the one whose Job started last (the control plane's clock), not
// the one that finished last (red-team finding R6-4: a slow scheduled backup
// finishing after an on-demand one moved it back, and deleting the on-demand
// one went unnoticed) nor the one named last (a node whose clock ran ahead
// names older data later, authserver/backup TestSkewedBackupDoesNotHideRecordedNewest).
func TestExpectNewestNeverMovesBack(t *testing.T) {
	folder := "stacks/demo/" + BackupKindPostgres + "/"
	line := func(k string) string {
		return `{"kind":"postgres","ok":true,"stored":true,"object":"` + k + `","size_bytes":1}`
	}
	job := func(name, object string, started, finished time.Duration) (batchv1.Job, []corev1.Pod) {
		j := finishedJob(name, true, backupT0.Add(finished), "")
		j.Status.StartTime = &metav1.Time{Time: backupT0.Add(started)}
		return j, []corev1.Pod{podWithResult(line(object), backupT0.Add(finished))}
	}
	for _, tc := range []struct {
		name            string
		first, second   string // objects, in the order the Jobs finish
		started         [2]time.Duration
		finished        [2]time.Duration
		want, lastFinal string
	}{
		// On-demand 03:05-03:06, then the scheduled one 03:00-03:20.
		{"slow scheduled backup", folder + "20261128T030500Z.dump.gz.gpg", folder + "20261128T030000Z.dump.gz.gpg",
			[2]time.Duration{5 * time.Minute, 0}, [2]time.Duration{6 * time.Minute, 20 * time.Minute},
			folder + "20261128T030500Z.dump.gz.gpg", "demo-backup-postgres-2"},
		// A node 50 minutes ahead (03:00, named 03:50), then a correct one at 03:10.
		{"skewed clock", folder + "20261128T035000Z.dump.gz.gpg", folder + "20261128T031000Z.dump.gz.gpg",
			[2]time.Duration{0, 10 * time.Minute}, [2]time.Duration{time.Minute, 11 * time.Minute},
			folder + "20261128T031000Z.dump.gz.gpg", "demo-backup-postgres-2"},
	} {
		s := withDrill(withBackup(sampleStack()))
		s.Spec.Backup.Destination.S3.Prefix = "stacks/demo"
		j1, p1 := job("demo-backup-postgres-1", tc.first, tc.started[0], tc.finished[0])
		j2, p2 := job("demo-backup-postgres-2", tc.second, tc.started[1], tc.finished[1])
		st := BackupKindStatusFromJobs(authv1alpha1.BackupKindStatus{}, []batchv1.Job{j1}, map[string][]corev1.Pod{j1.Name: p1})
		s.Status.Backups = &authv1alpha1.BackupsStatus{Postgres: st}
		if got := drillExpects(s); got != tc.first {
			t.Fatalf("%s: after the first backup the drill expects %q", tc.name, got)
		}
		// Both Jobs listed, and the first one pruned: the same.
		for _, jobs := range [][]batchv1.Job{{j1, j2}, {j2}} {
			st := BackupKindStatusFromJobs(st, jobs, map[string][]corev1.Pod{j1.Name: p1, j2.Name: p2})
			s.Status.Backups = &authv1alpha1.BackupsStatus{Postgres: st}
			if got := drillExpects(s); got != tc.want {
				t.Errorf("%s, %d Jobs listed: the drill expects %q, want %s", tc.name, len(jobs), got, tc.want)
			}
			if st.LastSuccess == nil || st.LastSuccess.Job != tc.lastFinal {
				t.Errorf("%s: lastSuccess %+v, want the Job that finished last", tc.name, st.LastSuccess)
			}
		}
	}
}

// A Job that completed but whose pod is gone (pod garbage collection: no result
// line, no object) is a success without an object: it never erases the
// recorded newest backup, and the drill keeps expecting it (red-team finding R6-5).
func TestExpectNewestSurvivesPodlessSuccess(t *testing.T) {
	s := withDrill(withBackup(sampleStack()))
	s.Spec.Backup.Destination.S3.Prefix = "stacks/demo"
	key := "stacks/demo/postgres/20261128T030000Z.dump.gz.gpg"
	prev := authv1alpha1.BackupKindStatus{LastSuccess: &authv1alpha1.BackupRun{Job: "demo-backup-postgres-1", Object: key, Time: metav1.NewTime(backupT0)}}
	j := finishedJob("demo-backup-postgres-2", true, backupT0.Add(24*time.Hour), "")
	st := BackupKindStatusFromJobs(prev, []batchv1.Job{j}, map[string][]corev1.Pod{})
	s.Status.Backups = &authv1alpha1.BackupsStatus{Postgres: st}
	if got := drillExpects(s); got != key {
		t.Errorf("after a success without an object (%+v) the drill expects %q, want %s", st.LastSuccess, got, key)
	}
	if st.LastSuccess == nil || st.LastSuccess.Job != j.Name {
		t.Errorf("lastSuccess %+v: the podless success is not recorded as the last success", st.LastSuccess)
	}
}
