package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

func withBackupSpec(s *authv1alpha1.AuthStack) *authv1alpha1.AuthStack {
	s.Spec.Backup = &authv1alpha1.BackupSpec{
		Postgres: authv1alpha1.BackupJobSpec{Schedule: "0 3 * * *", RetentionDays: 30},
		Redis:    authv1alpha1.BackupJobSpec{Schedule: "0 */6 * * *", RetentionDays: 7},
		Destination: authv1alpha1.BackupDestination{S3: authv1alpha1.S3Destination{
			Bucket: "auth-backups", Prefix: "prod", CredentialsSecretRef: &authv1alpha1.SecretNameRef{Name: "s3"}}},
		Encryption: authv1alpha1.BackupEncryption{PublicKeySecretRef: authv1alpha1.SecretKeyRef{Name: "backup-key", Key: "public.asc"}},
	}
	return s
}

func backupsHealthy(ns string) (*metav1.Condition, *authv1alpha1.AuthStack, error) {
	var s authv1alpha1.AuthStack
	if err := k8s.Get(context.Background(), key(ns, "auth"), &s); err != nil {
		return nil, nil, err
	}
	return meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionBackupsHealthy), &s, nil
}

// finishJob marks a Job finished (envtest runs no job controller) and gives
// it a pod whose termination message is msg.
func finishJob(t *testing.T, ns string, job *batchv1.Job, ok bool, msg string) {
	t.Helper()
	ctx := context.Background()
	now := metav1.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-pod", Namespace: ns, Labels: map[string]string{}},
		Spec:       *job.Spec.Template.Spec.DeepCopy(),
	}
	for k, v := range job.Spec.Template.Labels {
		pod.Labels[k] = v
	}
	pod.Labels[batchv1.JobNameLabel] = job.Name
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: job.Spec.Template.Spec.Containers[0].Name, Image: "x", ImageID: "x",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: msg, FinishedAt: now, StartedAt: now}}}}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatalf("pod status: %v", err)
	}
	typ, reason := batchv1.JobComplete, ""
	if !ok {
		typ, reason = batchv1.JobFailed, "BackoffLimitExceeded"
	}
	job.Status.StartTime = &now
	job.Status.Conditions = []batchv1.JobCondition{{Type: typ, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: reason}}
	if ok {
		job.Status.Conditions = append([]batchv1.JobCondition{{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now}}, job.Status.Conditions...)
		job.Status.CompletionTime = &now
		job.Status.Succeeded = 1
	} else {
		job.Status.Conditions = append([]batchv1.JobCondition{{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: reason}}, job.Status.Conditions...)
		job.Status.Failed = 1
	}
	if err := k8s.Status().Update(ctx, job); err != nil {
		t.Fatalf("job status: %v", err)
	}
}

func TestBackupCronJobsAnnotationAndStatus(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	ctx := context.Background()
	stack := withBackupSpec(sampleStack(ns, "auth"))
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}

	// Both CronJobs, Forbid, the schedule from the spec.
	for kind, sched := range map[string]string{"postgres": "0 3 * * *", "redis": "0 */6 * * *"} {
		cj := &batchv1.CronJob{}
		eventually(t, kind+" CronJob exists", func() error { return k8s.Get(ctx, key(ns, "auth-backup-"+kind), cj) })
		if cj.Spec.Schedule != sched || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("%s CronJob: schedule %q policy %s", kind, cj.Spec.Schedule, cj.Spec.ConcurrencyPolicy)
		}
	}
	// The key and S3 Secrets do not exist yet: said at once, naming the field.
	eventually(t, "BackupsHealthy names the missing Secret", func() error {
		c, _, err := backupsHealthy(ns)
		if err != nil {
			return err
		}
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonSecretNotFound ||
			!strings.Contains(c.Message, "spec.backup.encryption.publicKeySecretRef") {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	for name, data := range map[string]map[string]string{
		"backup-key": {"public.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----"},
		"s3":         {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3-secret"},
	} {
		if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}); err != nil {
			t.Fatal(err)
		}
	}
	// The Secrets of spec.backup are not watched: a reconcile (the periodic
	// recheck, or any change) picks them up.
	reconcileNow(t, op, ns)
	eventually(t, "BackupsHealthy awaits the first backup", func() error {
		c, s, err := backupsHealthy(ns)
		if err != nil {
			return err
		}
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != authv1alpha1.ReasonAwaitingFirstBackup {
			return fmt.Errorf("condition %+v", c)
		}
		if r := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionReady); r != nil && strings.Contains(r.Message, "Backups") {
			return fmt.Errorf("Ready depends on backups: %+v", r)
		}
		return nil
	})

	// The annotation runs one Job per kind, once per value.
	patch := client.MergeFrom(stack.DeepCopy())
	stack.Annotations = map[string]string{resources.AnnotationBackupNow: "first"}
	if err := k8s.Patch(ctx, stack, patch); err != nil {
		t.Fatal(err)
	}
	pgName := resources.OnDemandBackupJobName(stack, "postgres", "first")
	redisName := resources.OnDemandBackupJobName(stack, "redis", "first")
	pgJob, redisJob := &batchv1.Job{}, &batchv1.Job{}
	eventually(t, "on-demand Jobs exist", func() error {
		if err := k8s.Get(ctx, key(ns, pgName), pgJob); err != nil {
			return err
		}
		return k8s.Get(ctx, key(ns, redisName), redisJob)
	})

	// A successful postgres run and a failed redis run reach status.
	finishJob(t, ns, pgJob, true, `{"kind":"postgres","ok":true,"stored":true,"object":"prod/postgres/20261128T120000Z.dump.gz.gpg","size_bytes":4242}`)
	finishJob(t, ns, redisJob, false, `{"kind":"redis","ok":false,"error":"authenticating to Redis at redis:6379: WRONGPASS; check the password in REDIS_URL"}`)
	eventually(t, "status.backups and BackupsHealthy=False", func() error {
		c, s, err := backupsHealthy(ns)
		if err != nil {
			return err
		}
		b := s.Status.Backups
		if b == nil || b.Postgres.LastSuccess == nil || b.Postgres.LastSuccess.Object != "prod/postgres/20261128T120000Z.dump.gz.gpg" ||
			b.Postgres.LastSuccess.SizeBytes != 4242 || b.Redis.LastFailure == nil {
			return fmt.Errorf("status.backups %+v", b)
		}
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonBackupFailed || !strings.Contains(c.Message, "check the password in REDIS_URL") {
			return fmt.Errorf("condition %+v", c)
		}
		if r := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionReady); r != nil && r.Reason == authv1alpha1.ReasonBackupFailed {
			return fmt.Errorf("a failed backup made the stack unready: %+v", r)
		}
		return nil
	})

	// Turning backups off deletes the CronJobs and the condition.
	var cur authv1alpha1.AuthStack
	if err := k8s.Get(ctx, key(ns, "auth"), &cur); err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(cur.DeepCopy())
	cur.Spec.Backup = nil
	if err := k8s.Patch(ctx, &cur, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "backup CronJobs deleted, condition removed", func() error {
		for _, kind := range []string{"postgres", "redis"} {
			err := k8s.Get(ctx, key(ns, "auth-backup-"+kind), &batchv1.CronJob{})
			if err == nil {
				return fmt.Errorf("%s CronJob still there", kind)
			}
			if !apierrors.IsNotFound(err) {
				return err
			}
		}
		c, _, err := backupsHealthy(ns)
		if err != nil {
			return err
		}
		if c != nil {
			return fmt.Errorf("condition still set: %+v", c)
		}
		return nil
	})
}

// TestBackupNowRunsOnce: a backup-now request is recorded in status once its Jobs
// exist; deleting them (by hand, or their TTL) never runs it again, a new value does.
func TestBackupNowRunsOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	ctx := context.Background()
	stack := withBackupSpec(sampleStack(ns, "auth"))
	stack.Annotations = map[string]string{resources.AnnotationBackupNow: "r1"}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	name := resources.OnDemandBackupJobName(stack, resources.BackupKindPostgres, "r1")
	job := get(t, ns, name, &batchv1.Job{})
	if ttl := job.Spec.TTLSecondsAfterFinished; ttl == nil || *ttl != resources.OnDemandBackupTTLSeconds {
		t.Errorf("one-off Job TTL %v", ttl)
	}
	eventually(t, "the request is recorded", func() error {
		if b := getStack(t, ns).Status.Backups; b == nil || b.HandledRequest != "r1" {
			return fmt.Errorf("status.backups %+v", b)
		}
		return nil
	})
	if err := k8s.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	gone(t, ns, name, &batchv1.Job{})
	settle(t, op, ns)
	if err := k8s.Get(ctx, key(ns, name), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the handled request ran again: %v", err)
	}
	s := getStack(t, ns)
	patch := client.MergeFrom(s.DeepCopy())
	s.Annotations[resources.AnnotationBackupNow] = "r2"
	if err := k8s.Patch(ctx, s, patch); err != nil {
		t.Fatal(err)
	}
	get(t, ns, resources.OnDemandBackupJobName(stack, resources.BackupKindPostgres, "r2"), &batchv1.Job{})
}
