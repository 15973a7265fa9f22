package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/pepperusage"
	"github.com/leanauth/authstack/controllers/resources"
)

// peppersOf says which Secrets a pod template reads its peppers from: the current one,
// and the old ones in AUTH_OLD_PEPPERS_FILE order, as "secret/key".
func peppersOf(t *testing.T, d *appsv1.Deployment) (current string, old []string) {
	t.Helper()
	var oldFile string
	for _, c := range append(slices.Clone(d.Spec.Template.Spec.InitContainers), d.Spec.Template.Spec.Containers...) {
		var f string
		for _, e := range c.Env {
			if e.Name == "AUTH_OLD_PEPPERS_FILE" {
				f = e.Value
			}
		}
		if oldFile != "" && f != oldFile {
			t.Fatalf("container %s has AUTH_OLD_PEPPERS_FILE %q, another %q", c.Name, f, oldFile)
		}
		oldFile = f
	}
	files := map[string]string{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		switch {
		case v.Name == "pepper":
			current = v.Secret.SecretName + "/" + v.Secret.Items[0].Key
		case v.Name == "old-peppers":
			for _, s := range v.Projected.Sources {
				files[resources.OldPeppersMountPath+"/"+s.Secret.Items[0].Path] = s.Secret.Name + "/" + s.Secret.Items[0].Key
			}
		}
	}
	if oldFile == "" {
		if len(files) > 0 {
			t.Fatalf("old-peppers volume without AUTH_OLD_PEPPERS_FILE")
		}
		return current, nil
	}
	for _, f := range strings.Split(oldFile, ",") {
		if files[f] == "" {
			t.Fatalf("AUTH_OLD_PEPPERS_FILE names %s, which no volume source provides (%v)", f, files)
		}
		old = append(old, files[f])
	}
	return current, old
}

// waitPeppers waits until the Deployment reads exactly these peppers.
func waitPeppers(t *testing.T, ns, current string, old ...string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	eventually(t, fmt.Sprintf("pods get %s, old %v", current, old), func() error {
		d = &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), key(ns, "auth-authserver"), d); err != nil {
			return err
		}
		cur, o := peppersOf(t, d)
		if cur != current || !slices.Equal(o, old) {
			return fmt.Errorf("current %s, old %v", cur, o)
		}
		return nil
	})
	return d
}

// finishCount plays the kubelet and the Job controller for a count Job: its pod ends
// with the counts in its termination message, the Job completes.
func finishCount(t *testing.T, ns string, job *batchv1.Job, u pepperusage.Usage) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x", Namespace: ns, Labels: job.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true)}}},
		Spec: *job.Spec.Template.Spec.DeepCopy(),
	}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: resources.ComponentPepperCount, Image: testImage,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", Message: string(u.Line())}},
	}}}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	job.Status = batchv1.JobStatus{StartTime: &now, CompletionTime: &now, Succeeded: 1, Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}}
	if err := k8s.Status().Update(ctx, job); err != nil {
		t.Fatal(err)
	}
}

// nextCountJob creates the count Job of the next interval (the operator would, ten
// minutes later): a copy of job under a new name.
func nextCountJob(t *testing.T, job *batchv1.Job) *batchv1.Job {
	t.Helper()
	next := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-next", Namespace: job.Namespace,
		Labels: job.Labels, OwnerReferences: job.OwnerReferences}, Spec: *job.Spec.DeepCopy()}
	next.Spec.Selector = nil
	for _, l := range []string{"controller-uid", "job-name", batchv1.ControllerUidLabel, batchv1.JobNameLabel} {
		delete(next.Spec.Template.Labels, l)
	}
	if err := k8s.Create(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	return next
}

// countJob waits for the operator's count Job of version (the newest).
func countJob(t *testing.T, ns string, version int32, not ...string) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	eventually(t, fmt.Sprintf("a count Job of version %d", version), func() error {
		var jobs batchv1.JobList
		if err := k8s.List(context.Background(), &jobs, client.InNamespace(ns),
			client.MatchingLabels{resources.LabelPepperVersion: fmt.Sprint(version)}); err != nil {
			return err
		}
		for i := range jobs.Items {
			if !slices.Contains(not, jobs.Items[i].Name) {
				job = &jobs.Items[i]
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	return job
}

func pepperIDOf(t *testing.T, ns, name string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), key(ns, name), s); err != nil {
		t.Fatal(err)
	}
	k, err := resources.DecodePepper(s.Data[resources.PepperSecretKey])
	if err != nil {
		t.Fatal(err)
	}
	return pepperusage.ID(k)
}

// TestPepperRotationFromTheAPI: a generated pepper rotated through spec.pepperRotation.
// The new pepper goes into its own Secret (the first one is untouched), every pod first
// accepts it, then hashes with it with the old one as AUTH_OLD_PEPPERS_FILE; a count
// Job's result reaches status.pepper; retireBelow is refused while hashes use the old
// pepper, then honoured once none does, and force retires a used one; no Secret is
// ever deleted, and a settled rotation writes nothing.
func TestPepperRotationFromTheAPI(t *testing.T) {
	t.Parallel()
	ns, op, _ := setup(t)
	ctx := context.Background()
	getDeployment(t, ns)
	markDeploymentAvailable(t, ns, "auth-authserver")
	v1 := getPepper(t, ns)
	id1 := pepperIDOf(t, ns, "auth-pepper")

	updateStack(t, ns, func(s *authv1alpha1.AuthStack) {
		s.Spec.PepperRotation = &authv1alpha1.PepperRotationSpec{Version: 2}
	})
	// 1. Staged: the pods accept version 2, still hash with version 1.
	waitPeppers(t, ns, "auth-pepper/pepper", "auth-pepper-v2/pepper")
	v2 := &corev1.Secret{}
	if err := k8s.Get(ctx, key(ns, "auth-pepper-v2"), v2); err != nil {
		t.Fatal(err)
	}
	if !ptr.Deref(v2.Immutable, false) || len(v2.OwnerReferences) != 0 || !resources.ValidPepper(v2.Data["pepper"]) {
		t.Fatalf("version 2 Secret: immutable %v, owners %v", v2.Immutable, v2.OwnerReferences)
	}
	id2 := pepperIDOf(t, ns, "auth-pepper-v2")
	c := waitCondition(t, ns, authv1alpha1.ConditionPepperRotated, metav1.ConditionFalse, authv1alpha1.ReasonRotationInProgress)
	if !strings.Contains(c.Message, "still hash with version 1") {
		t.Errorf("staging message %q", c.Message)
	}
	if jobs := (&batchv1.JobList{}); k8s.List(ctx, jobs, client.InNamespace(ns), client.HasLabels{resources.LabelPepperVersion}) == nil && len(jobs.Items) > 0 {
		t.Fatalf("a count Job before the new pepper hashes everywhere: %s", jobs.Items[0].Name)
	}

	// 2. Once that roll is complete: version 2 hashes, version 1 verifies.
	markDeploymentAvailable(t, ns, "auth-authserver")
	d := waitPeppers(t, ns, "auth-pepper-v2/pepper", "auth-pepper/pepper")
	if a := d.Spec.Template.Annotations; a[resources.AnnotationPepperVersion] != "2" || a[resources.AnnotationPeppers] != "2,1" {
		t.Errorf("pod template annotations %v", a)
	}
	waitCondition(t, ns, authv1alpha1.ConditionPepperRotated, metav1.ConditionFalse, authv1alpha1.ReasonCountPending)
	markDeploymentAvailable(t, ns, "auth-authserver")

	// 3. The count: a Job with the database URL and no pepper.
	job := countJob(t, ns, 2)
	spec := job.Spec.Template.Spec
	for _, v := range spec.Volumes {
		if v.Secret != nil || v.Projected != nil {
			t.Errorf("the count Job mounts %s: it needs no pepper", v.Name)
		}
	}
	if len(spec.Containers) != 1 || spec.Containers[0].Args[0] != "peppers" ||
		spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name != "db" {
		t.Fatalf("count Job containers %+v", spec.Containers)
	}
	finishCount(t, ns, job, pepperusage.Usage{PasswordHashes: map[string]int64{id1: 3, id2: 5}, TOTPSecrets: map[string]int64{id1: 1}})
	c = waitCondition(t, ns, authv1alpha1.ConditionPepperRotated, metav1.ConditionFalse, authv1alpha1.ReasonRotationInProgress)
	if !strings.Contains(c.Message, "3 password hashes and 1 TOTP secrets still use version 1") {
		t.Errorf("progress message %q", c.Message)
	}
	st := getStack(t, ns).Status.Pepper
	if st == nil || st.CurrentVersion != 2 || len(st.Versions) != 2 || st.CountedAt == nil ||
		st.Versions[0].ID != id2 || st.Versions[0].State != authv1alpha1.PepperStateCurrent || *st.Versions[0].PasswordHashes != 5 ||
		st.Versions[1].ID != id1 || st.Versions[1].State != authv1alpha1.PepperStateAccepted || *st.Versions[1].PasswordHashes != 3 || *st.Versions[1].TOTPSecrets != 1 {
		t.Fatalf("status.pepper %+v", st)
	}
	// A new count interval rightly starts a new count Job: keep the next reconciles
	// inside one interval.
	if left := time.Until(time.Now().Truncate(resources.PepperCountInterval).Add(resources.PepperCountInterval)); left < time.Minute {
		time.Sleep(left + time.Second)
	}
	settle(t, op, ns)
	before := op.writes.count()
	for range 10 {
		reconcileNow(t, op, ns)
	}
	if n := op.writes.count() - before; n != 0 {
		t.Errorf("10 reconciles of a rotation in progress sent %d writes: %s", n, op.writes.recent())
	}

	// 4. Retiring a pepper still in use is refused.
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.PepperRotation.RetireBelow = 2 })
	c = waitCondition(t, ns, authv1alpha1.ConditionPepperRotated, metav1.ConditionFalse, authv1alpha1.ReasonRetirementBlocked)
	if !strings.Contains(c.Message, "3 password hashes and 1 TOTP secrets") || !strings.Contains(c.Message, "force") {
		t.Errorf("blocked message %q", c.Message)
	}
	waitPeppers(t, ns, "auth-pepper-v2/pepper", "auth-pepper/pepper")

	// 5. Once no hash uses it, it is retired: the pods no longer get it, the Secret stays.
	finishCount(t, ns, nextCountJob(t, job), pepperusage.Usage{PasswordHashes: map[string]int64{id2: 8}, TOTPSecrets: map[string]int64{id2: 1}})
	waitCondition(t, ns, authv1alpha1.ConditionPepperRotated, metav1.ConditionTrue, authv1alpha1.ReasonRotated)
	waitPeppers(t, ns, "auth-pepper-v2/pepper")
	if st := getStack(t, ns).Status.Pepper; st.Versions[1].State != authv1alpha1.PepperStateRetired {
		t.Errorf("version 1 %+v, want Retired", st.Versions[1])
	}
	if got := getPepper(t, ns); string(got.Data["pepper"]) != string(v1.Data["pepper"]) {
		t.Error("the version 1 Secret changed")
	}
	// A status read from a cache older than the retirement (version 1 still Accepted)
	// while the retirement's roll is under way must not give the pepper back.
	var staleRV string
	eventually(t, "status before the retirement written back", func() error {
		s := getStack(t, ns)
		staleRV = s.ResourceVersion
		s.Status.Pepper.Versions[1].State = authv1alpha1.PepperStateAccepted
		return k8s.Status().Update(ctx, s)
	})
	eventually(t, "the operator's cache sees the stale status", func() error {
		s := &authv1alpha1.AuthStack{}
		if err := op.reconciler.Get(ctx, key(ns, "auth"), s); err != nil || s.ResourceVersion == staleRV {
			return fmt.Errorf("cached resourceVersion %s (err %v)", s.ResourceVersion, err)
		}
		return nil
	})
	reconcileNow(t, op, ns)
	if _, old := peppersOf(t, getDeployment(t, ns)); len(old) != 0 {
		t.Fatalf("a stale status gave the retired pepper back: old %v", old)
	}
	waitCondition(t, ns, authv1alpha1.ConditionPepperRotated, metav1.ConditionTrue, authv1alpha1.ReasonRotated)

	// 6. Version 3 with force: retired while a user still needs version 2.
	markDeploymentAvailable(t, ns, "auth-authserver")
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.PepperRotation.Version = 3 })
	waitPeppers(t, ns, "auth-pepper-v2/pepper", "auth-pepper-v3/pepper")
	markDeploymentAvailable(t, ns, "auth-authserver")
	waitPeppers(t, ns, "auth-pepper-v3/pepper", "auth-pepper-v2/pepper")
	markDeploymentAvailable(t, ns, "auth-authserver")
	id3 := pepperIDOf(t, ns, "auth-pepper-v3")
	finishCount(t, ns, countJob(t, ns, 3), pepperusage.Usage{PasswordHashes: map[string]int64{id2: 1, id3: 7}, TOTPSecrets: map[string]int64{}})
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.PepperRotation.RetireBelow = 3 })
	waitCondition(t, ns, authv1alpha1.ConditionPepperRotated, metav1.ConditionFalse, authv1alpha1.ReasonRetirementBlocked)
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) { s.Spec.PepperRotation.Force = true })
	waitCondition(t, ns, authv1alpha1.ConditionPepperRotated, metav1.ConditionTrue, authv1alpha1.ReasonRotated)
	d = waitPeppers(t, ns, "auth-pepper-v3/pepper")
	// The migrate check accepts hashes of the retired peppers (those users reset): with
	// none using version 3 yet, it would otherwise refuse to start every new pod.
	for _, c := range d.Spec.Template.Spec.InitContainers {
		if e, _ := envValue(c, "AUTH_RETIRED_PEPPER_IDS"); c.Name == resources.MigrateContainerName && e.Value != id2+","+id1 {
			t.Errorf("migrate AUTH_RETIRED_PEPPER_IDS %q, want %q", e.Value, id2+","+id1)
		}
	}
	for _, name := range []string{"auth-pepper", "auth-pepper-v2", "auth-pepper-v3"} {
		if err := k8s.Get(ctx, key(ns, name), &corev1.Secret{}); err != nil {
			t.Errorf("pepper Secret %s: %v", name, err)
		}
	}
}

// markDeploymentTerminating reports the authserver rolled out but with n pods of an
// older template still terminating (they serve until their grace period ends).
func markDeploymentTerminating(t *testing.T, ns string, n int32) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "authserver Deployment marked rolled out with terminating pods", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), d); err != nil {
			return err
		}
		r := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: r, UpdatedReplicas: r,
			ReadyReplicas: r, AvailableReplicas: r, TerminatingReplicas: ptr.To(n)}
		return k8s.Status().Update(ctx, d)
	})
}

// waitRotationMessage waits until PepperRotated's message contains part.
func waitRotationMessage(t *testing.T, ns, part string) {
	t.Helper()
	eventually(t, "PepperRotated says "+part, func() error {
		c := meta.FindStatusCondition(getStack(t, ns).Status.Conditions, authv1alpha1.ConditionPepperRotated)
		if c == nil || !strings.Contains(c.Message, part) {
			return fmt.Errorf("PepperRotated %+v", c)
		}
		return nil
	})
}

// TestPepperRotationWaitsForTerminatingPods: a pod of the previous template keeps
// serving while it terminates (status.replicas no longer counts it). The new pepper
// must not hash while such a pod lacks it, and no count may be taken (and so no pepper
// retired) while a pod that still hashes with the old pepper can write a hash.
func TestPepperRotationWaitsForTerminatingPods(t *testing.T) {
	t.Parallel()
	ns, _, _ := setup(t)
	ctx := context.Background()
	getDeployment(t, ns)
	markDeploymentAvailable(t, ns, "auth-authserver")
	updateStack(t, ns, func(s *authv1alpha1.AuthStack) {
		s.Spec.PepperRotation = &authv1alpha1.PepperRotationSpec{Version: 2, RetireBelow: 2}
	})
	waitPeppers(t, ns, "auth-pepper/pepper", "auth-pepper-v2/pepper")

	// Staged everywhere but a pod without version 2 still terminates: not promoted.
	markDeploymentTerminating(t, ns, 1)
	waitRotationMessage(t, ns, "1 pods of an older template are still terminating")
	waitPeppers(t, ns, "auth-pepper/pepper", "auth-pepper-v2/pepper")

	markDeploymentAvailable(t, ns, "auth-authserver")
	waitPeppers(t, ns, "auth-pepper-v2/pepper", "auth-pepper/pepper")

	// Version 2 hashes on every running pod, but a pod hashing with version 1 still
	// terminates: no count yet.
	markDeploymentTerminating(t, ns, 1)
	waitRotationMessage(t, ns, "1 pods of an older template are still terminating")
	var jobs batchv1.JobList
	if err := k8s.List(ctx, &jobs, client.InNamespace(ns), client.HasLabels{resources.LabelPepperVersion}); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) > 0 {
		t.Fatalf("count Job %s created while a pod hashing with version 1 still terminates", jobs.Items[0].Name)
	}
	markDeploymentAvailable(t, ns, "auth-authserver")
	countJob(t, ns, 2)
}
