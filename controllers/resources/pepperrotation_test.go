package resources

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/pepperusage"
)

func TestPepperCountJobNameFits(t *testing.T) {
	stack := &authv1alpha1.AuthStack{}
	stack.Name = strings.Repeat("a", authv1alpha1.MaxNameLength)
	if n := PepperCountJobName(stack, 100, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); len(n) > 63 {
		t.Fatalf("%q: %d characters", n, len(n))
	}
}

func TestPepperVersions(t *testing.T) {
	gen := sampleStack()
	gen.Spec.PepperRotation = &authv1alpha1.PepperRotationSpec{Version: 3}
	ref := func(n, k string) authv1alpha1.SecretKeyRef { return authv1alpha1.SecretKeyRef{Name: n, Key: k} }
	want := []PepperVersion{{1, ref("demo-pepper", "pepper")}, {2, ref("demo-pepper-v2", "pepper")}, {3, ref("demo-pepper-v3", "pepper")}}
	if got := PepperVersions(gen); !reflect.DeepEqual(got, want) {
		t.Errorf("generated: %+v", got)
	}
	own := withOwnPepper(sampleStack())
	own.Spec.PepperRotation = &authv1alpha1.PepperRotationSpec{Version: 2,
		Peppers: []authv1alpha1.VersionedPepper{{Version: 2, SecretRef: ref("byo-pepper", "next")}}}
	want = []PepperVersion{{1, ref("byo-pepper", "current")}, {2, ref("byo-pepper", "next")}}
	if got := PepperVersions(own); !reflect.DeepEqual(got, want) {
		t.Errorf("brought: %+v", got)
	}
	if got := PepperVersions(sampleStack()); len(got) != 1 {
		t.Errorf("no rotation: %+v", got)
	}
	s := GeneratedPepperSecret(gen, 3, []byte("x"))
	if s.Name != "demo-pepper-v3" || !*s.Immutable || len(s.OwnerReferences) != 0 || s.Annotations[AnnotationRetain] != "true" {
		t.Errorf("generated Secret %+v", s.ObjectMeta)
	}
}

// The old peppers reach both containers as AUTH_OLD_PEPPERS_FILE, one file each, newest
// first; without a rotation the Deployment is exactly what it was.
func TestDeploymentOldPeppers(t *testing.T) {
	stack := sampleStack()
	plain := renderDeployment(stack)
	in := sampleInputs(stack)
	in.PepperMounts = PepperMounts{Version: 1}
	one := AuthServerDeployment(stack, in)
	if one.Spec.Template.Annotations[AnnotationPeppers] != "1" || len(one.Spec.Template.Spec.Volumes) != len(plain.Spec.Template.Spec.Volumes) {
		t.Errorf("version 1 alone: %v", one.Spec.Template.Annotations)
	}
	in.PepperMounts = PepperMounts{Version: 3, Old: []PepperVersion{
		{2, authv1alpha1.SecretKeyRef{Name: "demo-pepper-v2", Key: "pepper"}}, {1, authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}}}}
	spec := AuthServerDeployment(stack, in).Spec.Template
	if spec.Annotations[AnnotationPepperVersion] != "3" || spec.Annotations[AnnotationPeppers] != "3,2,1" {
		t.Errorf("annotations %v", spec.Annotations)
	}
	for _, name := range []string{MigrateContainerName, ComponentAuthServer} {
		c := container(t, spec.Spec, name)
		if got := envByName(t, c)["AUTH_OLD_PEPPERS_FILE"].Value; got != OldPeppersMountPath+"/v2,"+OldPeppersMountPath+"/v1" {
			t.Errorf("%s: AUTH_OLD_PEPPERS_FILE %q", name, got)
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || (m.Name == "old-peppers" && m.MountPath == OldPeppersMountPath && m.ReadOnly)
		}
		if !mounted {
			t.Errorf("%s does not mount the old peppers", name)
		}
	}
	for _, v := range spec.Spec.Volumes {
		if v.Name == "old-peppers" {
			src := v.Projected.Sources
			if len(src) != 2 || src[0].Secret.Name != "demo-pepper-v2" || src[0].Secret.Items[0].Path != "v2" || src[1].Secret.Name != "demo-pepper" {
				t.Errorf("sources %+v", src)
			}
			return
		}
	}
	t.Error("no old-peppers volume")
}

// Only a pod controlled by a count Job the stack controls, of the version asked, counts.
func TestLatestPepperCount(t *testing.T) {
	stack := sampleStack()
	stack.UID = "stack-uid"
	job := func(name string, uid types.UID, owner types.UID, version string, created int64) batchv1.Job {
		return batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, UID: uid, CreationTimestamp: metav1.Unix(created, 0),
			Labels:          map[string]string{LabelPepperVersion: version},
			OwnerReferences: []metav1.OwnerReference{{UID: owner, Controller: ptr.To(true)}}},
			Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Unix(created+5, 0)}}}}
	}
	pod := func(owner types.UID, n int64) corev1.Pod {
		u := pepperusage.Usage{PasswordHashes: map[string]int64{"id": n}, TOTPSecrets: map[string]int64{}}
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{UID: owner, Controller: ptr.To(true)}}},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: ComponentPepperCount,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: string(u.Line())}}}}}}
	}
	jobs := []batchv1.Job{
		job("old", "j1", "stack-uid", "2", 100),
		job("newest-foreign", "j2", "someone-else", "2", 300),
		job("other-version", "j3", "stack-uid", "1", 400),
		job("newer", "j4", "stack-uid", "2", 200),
	}
	pods := []corev1.Pod{pod("j1", 1), pod("j2", 99), pod("j3", 98), pod("not-a-job", 97), pod("j4", 4)}
	c, ok := LatestPepperCount(jobs, pods, string(stack.UID), 2)
	if !ok || c.Job != "newer" || c.Usage.PasswordHashes["id"] != 4 || c.At.Unix() != 205 {
		t.Fatalf("got %+v, %v; want the newer Job of the stack", c, ok)
	}
	if _, ok := LatestPepperCount(jobs, pods[3:4], string(stack.UID), 2); ok {
		t.Fatal("a pod not controlled by the Job counted")
	}
	// Created in the same second (the API's resolution): the greater name is the newer,
	// whatever order the list came in.
	same := []batchv1.Job{job("count-v2-a", "j5", "stack-uid", "2", 500), job("count-v2-a-next", "j6", "stack-uid", "2", 500)}
	samePods := []corev1.Pod{pod("j5", 5), pod("j6", 6)}
	for range 20 {
		if c, _ := LatestPepperCount(same, samePods, string(stack.UID), 2); c.Job != "count-v2-a-next" {
			t.Fatalf("same-second Jobs %v: got %s, want count-v2-a-next", []string{same[0].Name, same[1].Name}, c.Job)
		}
		slices.Reverse(same)
	}
}

func TestPepperCountJobGetsNoPepper(t *testing.T) {
	stack := sampleStack()
	job := PepperCountJob(stack, DefaultBackupSources(stack, sampleInputs(stack)), 2, time.Unix(6000, 0))
	if job.Labels[LabelPepperVersion] != "2" || job.OwnerReferences[0].Kind != "AuthStack" || *job.Spec.TTLSecondsAfterFinished != 3600 {
		t.Fatalf("job meta %+v", job.ObjectMeta)
	}
	c := job.Spec.Template.Spec.Containers[0]
	for _, e := range c.Env {
		if strings.Contains(e.Name, "PEPPER") {
			t.Errorf("env %s", e.Name)
		}
	}
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.Secret != nil || v.Projected != nil {
			t.Errorf("volume %s", v.Name)
		}
	}
	if c.TerminationMessagePath != "" && c.TerminationMessagePath != corev1.TerminationMessagePathDefault {
		t.Errorf("termination message at %s", c.TerminationMessagePath)
	}
}
