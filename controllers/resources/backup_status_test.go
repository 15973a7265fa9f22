package resources

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

var backupT0 = time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)

func finishedJob(name string, ok bool, at time.Time, reason string) batchv1.Job {
	j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}}
	typ := batchv1.JobComplete
	if !ok {
		typ = batchv1.JobFailed
	}
	j.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)},
		{Type: typ, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at), Reason: reason},
	}
	return j
}

func podWithResult(msg string, at time.Time) corev1.Pod {
	return corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name:  "backup-postgres",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: msg, FinishedAt: metav1.NewTime(at)}},
	}}}}
}

func TestBackupRunFromJob(t *testing.T) {
	ok := finishedJob("demo-backup-postgres-1", true, backupT0, "")
	run, stored, finished := BackupRunFromJob(&ok, []corev1.Pod{
		podWithResult(`{"ok":false,"error":"first attempt failed"}`, backupT0.Add(-time.Minute)),
		podWithResult(`{"kind":"postgres","ok":true,"stored":true,"object":"p/postgres/20261128T030000Z.dump.gz.gpg","size_bytes":1234}`, backupT0),
	})
	if !finished || !stored || run.Object != "p/postgres/20261128T030000Z.dump.gz.gpg" || run.SizeBytes != 1234 || !run.Time.Time.Equal(backupT0) || run.Message != "" || run.Job != ok.Name {
		t.Errorf("success: %+v stored %v finished %v", run, stored, finished)
	}

	bad := finishedJob("demo-backup-postgres-2", false, backupT0, "BackoffLimitExceeded")
	run, stored, finished = BackupRunFromJob(&bad, []corev1.Pod{podWithResult(`{"ok":false,"error":"pg_dump of db failed: password authentication failed; check DATABASE_URL"}`, backupT0)})
	if !finished || stored || run.Object != "" || !strings.Contains(run.Message, "check DATABASE_URL") {
		t.Errorf("failure: %+v stored %v", run, stored)
	}
	// No termination message (killed by the deadline): the Job's reason.
	run, stored, _ = BackupRunFromJob(&bad, nil)
	if stored || !strings.HasPrefix(run.Message, "BackoffLimitExceeded") {
		t.Errorf("failure without message: %+v", run)
	}
	// Exit 3: stored, retention failed -> a success that says so.
	run, stored, _ = BackupRunFromJob(&bad, []corev1.Pod{podWithResult(`{"ok":false,"stored":true,"object":"k","size_bytes":9,"error":"backup stored, but retention failed: AccessDenied"}`, backupT0)})
	if !stored || run.Object != "k" || !strings.Contains(run.Message, "retention failed") {
		t.Errorf("retention failure: %+v stored %v", run, stored)
	}
	running := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "r"}}
	if _, _, finished := BackupRunFromJob(&running, nil); finished {
		t.Error("a running Job counted as finished")
	}
}

func TestBackupKindStatusFromJobs(t *testing.T) {
	prev := authv1alpha1.BackupKindStatus{LastSuccess: &authv1alpha1.BackupRun{Time: metav1.NewTime(backupT0.Add(-72 * time.Hour)), Job: "old", Object: "o"}}
	jobs := []batchv1.Job{
		finishedJob("a", true, backupT0.Add(-24*time.Hour), ""),
		finishedJob("b", false, backupT0.Add(-time.Hour), "DeadlineExceeded"),
		finishedJob("c", true, backupT0.Add(-48*time.Hour), ""),
		{ObjectMeta: metav1.ObjectMeta{Name: "running"}},
	}
	got := BackupKindStatusFromJobs(prev, jobs, nil)
	if got.LastSuccess == nil || got.LastSuccess.Job != "a" || got.LastFailure == nil || got.LastFailure.Job != "b" {
		t.Fatalf("got %+v / %+v", got.LastSuccess, got.LastFailure)
	}
	// Pruned Jobs: the previous status stays.
	if got := BackupKindStatusFromJobs(prev, nil, nil); got.LastSuccess == nil || got.LastSuccess.Job != "old" {
		t.Fatalf("previous success lost: %+v", got)
	}
	if prev.LastFailure != nil {
		t.Fatal("prev was modified")
	}
}

func TestBackupInterval(t *testing.T) {
	for sched, want := range map[string]time.Duration{
		"0 3 * * *": 24 * time.Hour, "*/15 * * * *": 15 * time.Minute, "@hourly": time.Hour,
		"30 2 * * 0": 7 * 24 * time.Hour, "0 0-6/2 * * *": 2 * time.Hour,
	} {
		got, err := BackupInterval(sched, backupT0.Add(time.Minute))
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", sched, got, err, want)
		}
	}
	if _, err := BackupInterval("0 3 * *", backupT0); err == nil {
		t.Error("a 4-field schedule parsed")
	}
}

func TestBackupsHealthyCondition(t *testing.T) {
	both := []string{BackupKindPostgres, BackupKindRedis}
	stack := func() *authv1alpha1.AuthStack {
		s := withBackup(sampleStack())
		s.Spec.Backup.Redis.Suspend = false
		s.Spec.Backup.Redis.Schedule = "0 */6 * * *"
		return s
	}
	success := func(at time.Time) *authv1alpha1.BackupRun {
		return &authv1alpha1.BackupRun{Time: metav1.NewTime(at), Job: "j-ok", Object: "o"}
	}
	failure := func(at time.Time) *authv1alpha1.BackupRun {
		return &authv1alpha1.BackupRun{Time: metav1.NewTime(at), Job: "j-bad", Message: "pg_dump failed; check DATABASE_URL"}
	}
	now := backupT0.Add(time.Hour)
	healthy := &authv1alpha1.BackupsStatus{
		Postgres: authv1alpha1.BackupKindStatus{LastSuccess: success(backupT0)},
		Redis:    authv1alpha1.BackupKindStatus{LastSuccess: success(now.Add(-3 * time.Hour)), LastFailure: failure(now.Add(-9 * time.Hour))},
	}
	since := backupT0.Add(-30 * 24 * time.Hour)
	for _, tc := range []struct {
		name   string
		stack  *authv1alpha1.AuthStack
		kinds  []string
		status *authv1alpha1.BackupsStatus
		since  time.Time
		want   metav1.ConditionStatus
		reason string
		msg    string
	}{
		{"all on time", stack(), both, healthy, since, metav1.ConditionTrue, authv1alpha1.ReasonBackupsSucceeded, "on time"},
		{"newest run failed", stack(), both, &authv1alpha1.BackupsStatus{
			Postgres: authv1alpha1.BackupKindStatus{LastSuccess: success(backupT0.Add(-24 * time.Hour)), LastFailure: failure(backupT0)},
			Redis:    healthy.Redis}, since, metav1.ConditionFalse, authv1alpha1.ReasonBackupFailed, "check DATABASE_URL"},
		{"daily backup older than two days", stack(), both, &authv1alpha1.BackupsStatus{
			Postgres: authv1alpha1.BackupKindStatus{LastSuccess: success(now.Add(-49 * time.Hour))}, Redis: healthy.Redis},
			since, metav1.ConditionFalse, authv1alpha1.ReasonBackupOverdue, "demo-backup-postgres"},
		{"daily backup 47h old is fine", stack(), both, &authv1alpha1.BackupsStatus{
			Postgres: authv1alpha1.BackupKindStatus{LastSuccess: success(now.Add(-47 * time.Hour))}, Redis: healthy.Redis},
			since, metav1.ConditionTrue, authv1alpha1.ReasonBackupsSucceeded, ""},
		{"6-hourly redis 13h old", stack(), both, &authv1alpha1.BackupsStatus{
			Postgres: healthy.Postgres, Redis: authv1alpha1.BackupKindStatus{LastSuccess: success(now.Add(-13 * time.Hour))}},
			since, metav1.ConditionFalse, authv1alpha1.ReasonBackupOverdue, "redis"},
		{"just turned on", stack(), both, nil, now.Add(-time.Hour), metav1.ConditionTrue, authv1alpha1.ReasonAwaitingFirstBackup, "postgres, redis"},
		{"never succeeded in two intervals", stack(), both, nil, now.Add(-50 * time.Hour), metav1.ConditionFalse, authv1alpha1.ReasonBackupOverdue, "no successful postgres backup"},
		{"suspended kind is not judged", func() *authv1alpha1.AuthStack { s := stack(); s.Spec.Backup.Redis.Suspend = true; return s }(), both,
			&authv1alpha1.BackupsStatus{Postgres: healthy.Postgres}, since, metav1.ConditionTrue, authv1alpha1.ReasonBackupsSucceeded, "suspended: redis"},
		{"everything suspended", func() *authv1alpha1.AuthStack {
			s := stack()
			s.Spec.Backup.Redis.Suspend, s.Spec.Backup.Postgres.Suspend = true, true
			return s
		}(), both, nil, since, metav1.ConditionTrue, authv1alpha1.ReasonBackupsSuspended, ""},
		{"only the rendered kinds count", stack(), []string{BackupKindPostgres}, &authv1alpha1.BackupsStatus{Postgres: healthy.Postgres},
			since, metav1.ConditionTrue, authv1alpha1.ReasonBackupsSucceeded, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := BackupsHealthyCondition(tc.stack, tc.kinds, tc.status, tc.since, now)
			if !ok {
				t.Fatal("no condition")
			}
			if c.Type != authv1alpha1.ConditionBackupsHealthy || c.Status != tc.want || c.Reason != tc.reason || !strings.Contains(c.Message, tc.msg) || c.ObservedGeneration != tc.stack.Generation {
				t.Errorf("got %s=%s %s %q", c.Type, c.Status, c.Reason, c.Message)
			}
		})
	}
	if _, ok := BackupsHealthyCondition(sampleStack(), both, nil, since, now); ok {
		t.Error("a condition without spec.backup")
	}
}

func TestBackupsStatusFromJobs(t *testing.T) {
	pgJob := finishedJob("demo-backup-postgres-1", true, backupT0, "")
	pgJob.Labels = map[string]string{LabelComponent: ComponentBackupPostgres}
	redisJob := finishedJob("demo-backup-redis-now-1", false, backupT0, "BackoffLimitExceeded")
	redisJob.Labels = map[string]string{LabelComponent: ComponentBackupRedis}
	other := finishedJob("demo-redis-bootstrap", true, backupT0, "")
	other.Labels = map[string]string{LabelComponent: "redis-bootstrap"}
	pod := podWithResult(`{"ok":true,"stored":true,"object":"p/postgres/x.dump.gz.gpg","size_bytes":77}`, backupT0)
	pod.Labels = map[string]string{batchv1.JobNameLabel: pgJob.Name}
	stray := podWithResult(`{"ok":true,"stored":true,"object":"wrong","size_bytes":1}`, backupT0)
	stray.Labels = map[string]string{batchv1.JobNameLabel: "another-job"}

	got := BackupsStatusFromJobs(nil, []batchv1.Job{pgJob, redisJob, other}, []corev1.Pod{pod, stray})
	if s := got.Postgres.LastSuccess; s == nil || s.Object != "p/postgres/x.dump.gz.gpg" || s.SizeBytes != 77 || got.Postgres.LastFailure != nil {
		t.Errorf("postgres %+v / %+v", got.Postgres.LastSuccess, got.Postgres.LastFailure)
	}
	if f := got.Redis.LastFailure; f == nil || f.Job != redisJob.Name || got.Redis.LastSuccess != nil {
		t.Errorf("redis %+v / %+v", got.Redis.LastSuccess, got.Redis.LastFailure)
	}
}

func TestBackupCronJobsAndOnDemandJobs(t *testing.T) {
	s := sampleStack()
	apply, remove := BackupCronJobs(s, DefaultBackupSources(s, sampleInputs(s)))
	if len(apply) != 0 || strings.Join(remove, ",") != "demo-backup-postgres,demo-backup-redis" {
		t.Errorf("without spec.backup: apply %d, remove %v", len(apply), remove)
	}
	s = withBackup(sampleStack())
	src := DefaultBackupSources(s, sampleInputs(s))
	src.RedisURL = nil
	apply, remove = BackupCronJobs(s, src)
	if len(apply) != 1 || apply[0].Name != "demo-backup-postgres" || strings.Join(remove, ",") != "demo-backup-redis" {
		t.Errorf("postgres only: apply %v, remove %v", apply, remove)
	}
	if jobs := OnDemandBackupJobs(s, src); jobs != nil {
		t.Errorf("on-demand Jobs without the annotation: %d", len(jobs))
	}
	s.Annotations = map[string]string{AnnotationBackupNow: "2026-11-28T12:00:00Z"}
	jobs := OnDemandBackupJobs(s, DefaultBackupSources(s, sampleInputs(s)))
	if len(jobs) != 2 || jobs[0].Name == jobs[1].Name {
		t.Fatalf("on-demand Jobs: %d", len(jobs))
	}
	for _, j := range jobs {
		sel := BackupJobLabels(s, strings.TrimPrefix(j.Labels[LabelComponent], "backup-"))
		for k, v := range sel {
			if j.Labels[k] != v || j.Spec.Template.Labels[k] != v {
				t.Errorf("Job %s is not selected by BackupJobLabels (%s=%s)", j.Name, k, v)
			}
		}
	}
}
