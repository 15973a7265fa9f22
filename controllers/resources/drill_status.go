package resources

import (
	"cmp"
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/backup/result"
)

// DrillRunFromJob reads a finished restore drill Job and its pods (the
// container's termination message holds the drill's result line, as for the
// backups). finished is false while the Job runs.
func DrillRunFromJob(job *batchv1.Job, pods []corev1.Pod) (run authv1alpha1.DrillRun, finished bool) {
	run.Job = job.Name
	var failedHow string
	finished, run.Time, failedHow = jobEnd(job) // backup_status.go
	if !finished {
		return run, false
	}
	newest := newestTerminated(pods, func(name string) bool { return name == ComponentBackupVerify })
	var res result.Result
	ok := false
	if newest != nil {
		res, ok = result.Parse(newest.Message)
		ok = ok && res.Kind == result.KindVerify
	}
	run.Reason = authv1alpha1.ReasonDrillFailed
	if ok {
		run.Reason = cmp.Or(res.Reason, authv1alpha1.ReasonDrillFailed)
		run.Object = res.Object
		run.RestoreSeconds = (res.RestoreMS + 500) / 1000
		if t, err := time.Parse(time.RFC3339, res.BackupTime); err == nil {
			run.BackupTime = &metav1.Time{Time: t}
		}
	}
	run.Succeeded = failedHow == "" && ok && res.OK
	switch {
	case run.Succeeded:
		run.Reason = authv1alpha1.ReasonDrillSucceeded
		run.Message = fmt.Sprintf("restored %s into a scratch database in %s; %d rows in %d tables match the backup's counts, the migrations ran, the pepper verifies the canary",
			run.Object, time.Duration(res.RestoreMS)*time.Millisecond, res.Rows, res.Tables) + unverifiedWarning(res, job.Name)
	case ok && res.Error != "":
		run.Message = res.Error
	default:
		// Killed (deadline, eviction) before it wrote a result, or the pod never started.
		run.Reason = authv1alpha1.ReasonDrillFailed
		run.Message = cmp.Or(failedHow, "the drill's Job finished without a result") + fmt.Sprintf(": see kubectl logs job/%s", job.Name)
	}
	if len(run.Message) > 1024 {
		run.Message = run.Message[:1024]
	}
	return run, true
}

// DrillStatusFromJobs folds the finished drill Jobs into status.backups'
// lastDrill and lastSuccessfulDrill; prev keeps what pruned Jobs no longer show.
func DrillStatusFromJobs(prev *authv1alpha1.BackupsStatus, jobs []batchv1.Job, pods []corev1.Pod) *authv1alpha1.BackupsStatus {
	out := &authv1alpha1.BackupsStatus{}
	if prev != nil {
		out = prev.DeepCopy()
	}
	podsByJob := map[string][]corev1.Pod{}
	for _, p := range pods {
		podsByJob[p.Labels[batchv1.JobNameLabel]] = append(podsByJob[p.Labels[batchv1.JobNameLabel]], p)
	}
	sorted := append([]batchv1.Job(nil), jobs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := range sorted {
		if sorted[i].Labels[LabelComponent] != ComponentBackupVerify {
			continue
		}
		run, finished := DrillRunFromJob(&sorted[i], podsByJob[sorted[i].Name])
		if !finished {
			continue
		}
		// Equal times (second precision): the later name wins, as the
		// CronJob names its Jobs by their scheduled time.
		if out.LastDrill == nil || !run.Time.Before(&out.LastDrill.Time) {
			r := run
			out.LastDrill = &r
		}
		if run.Succeeded && (out.LastSuccessfulDrill == nil || !run.Time.Before(&out.LastSuccessfulDrill.Time)) {
			r := run
			out.LastSuccessfulDrill = &r
		}
	}
	return out
}

// RestoreVerifiedCondition is ConditionRestoreVerified from status.backups:
// the newest drill's result, with the backup's age, the restore time and the
// data-loss window; False DrillOverdue when no drill passed within twice the
// drill schedule's interval (counted from since, when drills were turned on,
// before the first); Unknown before the first drill. ok is false without
// spec.backup.verify (the condition is removed).
func RestoreVerifiedCondition(stack *authv1alpha1.AuthStack, status *authv1alpha1.BackupsStatus, since, now time.Time) (metav1.Condition, bool) {
	b := stack.Spec.Backup
	if b == nil || b.Verify == nil {
		return metav1.Condition{}, false
	}
	mk := func(s metav1.ConditionStatus, reason, msg string) (metav1.Condition, bool) {
		return metav1.Condition{Type: authv1alpha1.ConditionRestoreVerified, Status: s, Reason: reason, Message: msg,
			ObservedGeneration: stack.Generation}, true
	}
	if status == nil {
		status = &authv1alpha1.BackupsStatus{}
	}
	last, good := status.LastDrill, status.LastSuccessfulDrill
	if last != nil && !last.Succeeded {
		return mk(metav1.ConditionFalse, last.Reason, fmt.Sprintf("the last restore drill (Job %s, %s) failed: %s",
			last.Job, last.Time.UTC().Format(time.RFC3339), last.Message))
	}
	interval, err := BackupInterval(cmp.Or(b.Verify.Schedule, authv1alpha1.DefaultDrillSchedule), now)
	if err != nil {
		return mk(metav1.ConditionFalse, authv1alpha1.ReasonInvalidSchedule, "spec.backup.verify.schedule: "+err.Error())
	}
	from := since
	if good != nil {
		from = good.Time.Time
	}
	if !b.Verify.Suspend && now.Sub(from) > 2*interval {
		what := "no restore drill has passed since " + from.UTC().Format(time.RFC3339)
		if good != nil {
			what = "the last passing restore drill is from " + from.UTC().Format(time.RFC3339)
		}
		return mk(metav1.ConditionFalse, authv1alpha1.ReasonDrillOverdue,
			fmt.Sprintf("%s, more than twice the drill schedule's interval (%s): check the CronJob %s", what, interval, DrillCronJobName(stack)))
	}
	if good == nil {
		if b.Verify.Suspend {
			return mk(metav1.ConditionUnknown, authv1alpha1.ReasonDrillsSuspended, "restore drills are suspended and none has run")
		}
		return mk(metav1.ConditionUnknown, authv1alpha1.ReasonAwaitingFirstDrill, "no restore drill has run yet: the first runs on the schedule "+cmp.Or(b.Verify.Schedule, authv1alpha1.DefaultDrillSchedule))
	}
	return mk(metav1.ConditionTrue, authv1alpha1.ReasonDrillSucceeded, drillSummary(stack, good, now))
}

// drillSummary: which backup, how old, how long the restore took, and the
// data-loss window (what a restore from the newest backup loses).
func drillSummary(stack *authv1alpha1.AuthStack, d *authv1alpha1.DrillRun, now time.Time) string {
	msg := fmt.Sprintf("backup %s restored in %s by the drill at %s", d.Object,
		time.Duration(d.RestoreSeconds)*time.Second, d.Time.UTC().Format(time.RFC3339))
	if d.BackupTime != nil {
		msg += fmt.Sprintf(" (taken %s, %s old at the drill)", d.BackupTime.UTC().Format(time.RFC3339),
			d.Time.Sub(d.BackupTime.Time).Round(time.Minute))
	}
	msg += "; row counts, migrations and the pepper canary passed"
	if iv, err := BackupInterval(cmp.Or(stack.Spec.Backup.Postgres.Schedule, authv1alpha1.DefaultBackupSchedule), now); err == nil {
		msg += fmt.Sprintf(". Data-loss window: a restore loses the writes since the newest backup, up to %s with the postgres backup schedule", iv)
	}
	return msg
}

// unverifiedWarning is what a drill's or restore's result says about objects it did
// not trust: newer ones it stepped over, or an unsigned backup it used.
func unverifiedWarning(res result.Result, job string) string {
	var w string
	if res.Skipped > 0 {
		w += fmt.Sprintf("; WARNING: %d newer objects in the bucket are not backups signed by this stack's key (or are named more than an hour in the future, or after the expected newest backup but written before it) and were skipped: check who writes the bucket, and the nodes' clocks (kubectl logs job/%s names them)", res.Skipped, job)
	}
	if res.Unsigned {
		w += "; the backup is unsigned, accepted by spec.backup.signing.trustUnsignedBefore"
	}
	return w
}
