package resources

import (
	"cmp"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/backup/result"
)

// BackupRunFromJob reads a finished backup Job and its pods: the time it
// finished, whether a backup was stored, and (from the container's
// termination message) the object key and size, or why it failed. finished
// is false while the Job runs.
func BackupRunFromJob(job *batchv1.Job, pods []corev1.Pod) (run authv1alpha1.BackupRun, stored, finished bool) {
	run.Job, run.Started = job.Name, job.Status.StartTime.DeepCopy()
	var failedHow string
	finished, run.Time, failedHow = jobEnd(job)
	if !finished {
		return run, false, false
	}
	failed := failedHow != ""
	run.Message = failedHow
	// The newest terminated backup container holds the result line.
	newest := newestTerminated(pods, func(name string) bool { return strings.HasPrefix(name, "backup-") })
	var res result.Result
	if newest != nil {
		res, _ = result.Parse(newest.Message)
		if res.Stored {
			run.Object, run.SizeBytes = res.Object, res.SizeBytes
		}
		if res.Error != "" {
			run.Message = res.Error
		}
	}
	stored = !failed || res.Stored
	if !failed && res.OK {
		run.Message = ""
	}
	if len(run.Message) > 1024 {
		run.Message = run.Message[:1024]
	}
	return run, stored, true
}

// BackupKindStatusFromJobs folds the finished Jobs of one kind (scheduled and
// on-demand) into the newest success and newest failure (by the time they
// finished), and the stored backup holding the newest data (Newest). prev is
// kept for what the Jobs no longer show (finished Jobs are pruned by the
// history limit).
func BackupKindStatusFromJobs(prev authv1alpha1.BackupKindStatus, jobs []batchv1.Job, podsByJob map[string][]corev1.Pod) authv1alpha1.BackupKindStatus {
	out := *prev.DeepCopy()
	out.Newest = newestBackup(out).DeepCopy()
	sorted := append([]batchv1.Job(nil), jobs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := range sorted {
		run, stored, finished := BackupRunFromJob(&sorted[i], podsByJob[sorted[i].Name])
		if !finished {
			continue
		}
		slot := &out.LastFailure
		if stored {
			slot = &out.LastSuccess
		}
		if *slot == nil || run.Time.After((*slot).Time.Time) {
			r := run
			*slot = &r
		}
		if stored && run.Object != "" && holdsNewerData(&run, out.Newest) {
			r := run
			out.Newest = &r
		}
	}
	return out
}

// newestBackup is the recorded run whose backup holds the newest data: Newest,
// or for a status written before that field existed, lastSuccess if it stored
// an object. nil: none.
func newestBackup(ks authv1alpha1.BackupKindStatus) *authv1alpha1.BackupRun {
	switch {
	case ks.Newest != nil:
		return ks.Newest
	case ks.LastSuccess != nil && ks.LastSuccess.Object != "":
		return ks.LastSuccess
	}
	return nil
}

// holdsNewerData: run's backup holds newer data than cur's (nil: none). Its Job
// started later, by the cluster's clock; the same second, or a start not
// recorded: its object's name is later.
func holdsNewerData(run, cur *authv1alpha1.BackupRun) bool {
	switch {
	case cur == nil:
		return true
	case run.Started != nil && cur.Started != nil && !run.Started.Equal(cur.Started):
		return run.Started.After(cur.Started.Time)
	}
	return run.Object > cur.Object
}

// BackupInterval is the time between two runs of a cron schedule, measured
// at now (for irregular schedules, the gap that follows the next run).
func BackupInterval(schedule string, now time.Time) (time.Duration, error) {
	s, err := cron.ParseStandard(schedule)
	if err != nil {
		return 0, err
	}
	next := s.Next(now)
	return s.Next(next).Sub(next), nil
}

// BackupsHealthyCondition is ConditionBackupsHealthy for the kinds that are
// scheduled (kinds: those whose CronJob is rendered). It is False when the
// newest finished run of a kind failed, or when no success happened within
// twice the schedule's interval (counted from the last success, or from
// since — when backups were turned on — if there was none). ok is false when
// no kind is scheduled and the condition should be removed.
func BackupsHealthyCondition(stack *authv1alpha1.AuthStack, kinds []string, status *authv1alpha1.BackupsStatus, since, now time.Time) (cond metav1.Condition, ok bool) {
	if stack.Spec.Backup == nil || len(kinds) == 0 {
		return metav1.Condition{}, false
	}
	mk := func(s metav1.ConditionStatus, reason, msg string) (metav1.Condition, bool) {
		return metav1.Condition{Type: authv1alpha1.ConditionBackupsHealthy, Status: s, Reason: reason, Message: msg,
			ObservedGeneration: stack.Generation}, true
	}
	if status == nil {
		status = &authv1alpha1.BackupsStatus{}
	}
	var waiting, suspended []string
	active := 0
	for _, kind := range kinds {
		js := backupJobSpec(stack, kind)
		if js.Suspend {
			suspended = append(suspended, kind)
			continue
		}
		active++
		ks := status.Postgres
		if kind == BackupKindRedis {
			ks = status.Redis
		}
		if f := ks.LastFailure; f != nil && (ks.LastSuccess == nil || f.Time.After(ks.LastSuccess.Time.Time)) {
			return mk(metav1.ConditionFalse, authv1alpha1.ReasonBackupFailed,
				fmt.Sprintf("the last %s backup (Job %s, %s) failed: %s", kind, f.Job, f.Time.UTC().Format(time.RFC3339), f.Message))
		}
		interval, err := BackupInterval(cmp.Or(js.Schedule, authv1alpha1.DefaultBackupSchedule), now)
		if err != nil {
			return mk(metav1.ConditionFalse, authv1alpha1.ReasonInvalidSchedule, fmt.Sprintf("spec.backup.%s.schedule: %v", kind, err))
		}
		from := since
		if ks.LastSuccess != nil {
			from = ks.LastSuccess.Time.Time
		}
		if now.Sub(from) > 2*interval {
			what := "no successful " + kind + " backup since " + from.UTC().Format(time.RFC3339)
			if ks.LastSuccess != nil {
				what = "the last successful " + kind + " backup is from " + from.UTC().Format(time.RFC3339)
			}
			return mk(metav1.ConditionFalse, authv1alpha1.ReasonBackupOverdue,
				fmt.Sprintf("%s, more than twice the schedule's interval (%s): check the CronJob %s", what, interval, BackupCronJobName(stack, kind)))
		}
		if ks.LastSuccess == nil {
			waiting = append(waiting, kind)
		}
	}
	switch {
	case active == 0:
		return mk(metav1.ConditionTrue, authv1alpha1.ReasonBackupsSuspended, "backups are suspended: "+strings.Join(suspended, ", "))
	case len(waiting) > 0:
		return mk(metav1.ConditionTrue, authv1alpha1.ReasonAwaitingFirstBackup, "no backup has run yet: "+strings.Join(waiting, ", "))
	}
	msg := "the last backups succeeded on time"
	if len(suspended) > 0 {
		msg += "; suspended: " + strings.Join(suspended, ", ")
	}
	return mk(metav1.ConditionTrue, authv1alpha1.ReasonBackupsSucceeded, msg)
}

// BackupsStatusFromJobs computes status.backups from the backup Jobs and
// their pods (listed with BackupJobLabels of each kind, or all of the stack's:
// they are told apart by their component label, and pods are matched to Jobs
// by the batch.kubernetes.io/job-name label). prev is the current status, kept
// for runs whose Jobs were pruned.
func BackupsStatusFromJobs(prev *authv1alpha1.BackupsStatus, jobs []batchv1.Job, pods []corev1.Pod) *authv1alpha1.BackupsStatus {
	out := &authv1alpha1.BackupsStatus{}
	if prev != nil {
		out = prev.DeepCopy()
	}
	podsByJob := map[string][]corev1.Pod{}
	for _, p := range pods {
		if name := p.Labels[batchv1.JobNameLabel]; name != "" {
			podsByJob[name] = append(podsByJob[name], p)
		}
	}
	byKind := map[string][]batchv1.Job{}
	for _, j := range jobs {
		switch j.Labels[LabelComponent] {
		case ComponentBackupPostgres:
			byKind[BackupKindPostgres] = append(byKind[BackupKindPostgres], j)
		case ComponentBackupRedis:
			byKind[BackupKindRedis] = append(byKind[BackupKindRedis], j)
		}
	}
	out.Postgres = BackupKindStatusFromJobs(out.Postgres, byKind[BackupKindPostgres], podsByJob)
	out.Redis = BackupKindStatusFromJobs(out.Redis, byKind[BackupKindRedis], podsByJob)
	return out
}

// jobEnd says whether a Job finished, when, and (failed Jobs only) how it failed.
func jobEnd(job *batchv1.Job) (finished bool, at metav1.Time, failedHow string) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			finished, at = true, c.LastTransitionTime
		case batchv1.JobFailed:
			finished, at = true, c.LastTransitionTime
			failedHow = strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	return finished, at, failedHow
}

// newestTerminated is the last terminated state, among pods, of a container whose
// name container accepts: a one-shot Job's result line is in its termination message.
func newestTerminated(pods []corev1.Pod, container func(name string) bool) *corev1.ContainerStateTerminated {
	var newest *corev1.ContainerStateTerminated
	for i := range pods {
		for _, cs := range pods[i].Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && container(cs.Name) &&
				(newest == nil || t.FinishedAt.After(newest.FinishedAt.Time)) {
				newest = t
			}
		}
	}
	return newest
}
