package resources

import (
	"bytes"
	"encoding/hex"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestNewPepper(t *testing.T) {
	a, err := NewPepper()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewPepper()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{a, b} {
		if len(p) != 64 {
			t.Errorf("pepper has %d characters, want 64", len(p))
		}
		raw, err := hex.DecodeString(string(p))
		if err != nil || len(raw) != 32 {
			t.Errorf("pepper %d chars is not 32 hex-encoded bytes: %v", len(p), err)
		}
		if !ValidPepper(p) {
			t.Error("a generated pepper fails ValidPepper")
		}
	}
	if bytes.Equal(a, b) {
		t.Error("two NewPepper calls returned the same pepper")
	}
}

func TestValidPepper(t *testing.T) {
	for _, c := range pepperCases {
		if got := ValidPepper(c.value); got != c.valid {
			t.Errorf("ValidPepper(%s) = %v, want %v", c.name, got, c.valid)
		}
	}
}

func TestPepperSecret(t *testing.T) {
	s := sampleStack()
	p := []byte("6a1f0c3e9b2d4f5a7c8e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a")
	sec := PepperSecret(s, p)
	if sec.APIVersion != "v1" || sec.Kind != "Secret" || sec.Name != "demo-pepper" || sec.Namespace != testNamespace {
		t.Errorf("Secret = %s %s %s/%s", sec.APIVersion, sec.Kind, sec.Namespace, sec.Name)
	}
	if ref := PepperRef(s); sec.Name != ref.Name {
		t.Errorf("generated Secret %q is not the one PepperRef names (%q)", sec.Name, ref.Name)
	} else if _, ok := sec.Data[ref.Key]; !ok {
		t.Errorf("generated Secret has no key %q (PepperRef's)", ref.Key)
	}
	if len(sec.OwnerReferences) != 0 {
		t.Errorf("pepper Secret has owner references %+v: deleting the AuthStack would delete every user's login", sec.OwnerReferences)
	}
	if sec.Immutable == nil || !*sec.Immutable {
		t.Error("pepper Secret is not immutable")
	}
	if !bytes.Equal(sec.Data[PepperSecretKey], p) || len(sec.Data) != 1 || len(sec.StringData) != 0 {
		t.Errorf("pepper Secret data = %d keys, want only %q with the pepper", len(sec.Data), PepperSecretKey)
	}
	if sec.Annotations[AnnotationRetain] != "true" {
		t.Errorf("%s = %q, want true", AnnotationRetain, sec.Annotations[AnnotationRetain])
	}
	for k, v := range sec.Annotations {
		if bytes.Contains([]byte(v), p) || bytes.Contains([]byte(k), p) {
			t.Error("the pepper appears in an annotation")
		}
	}
	if sec.Labels[LabelInstance] != testName || sec.Labels[LabelComponent] != ComponentPepper {
		t.Errorf("labels = %v", sec.Labels)
	}
}

func TestPepperMismatch(t *testing.T) {
	term := func(code int32, msg string) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ExitCode: code, Message: msg}
	}
	pod := func(name string, st corev1.ContainerStatus) corev1.Pod {
		st.Name = MigrateContainerName
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "auth-authserver-6d5f7c9b8", Controller: ptr.To(true)}}},
			Status: corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{st}}}
	}
	stray := pod("stray", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term(3, "forged")}})
	stray.OwnerReferences = nil
	otherApp := pod("other-app", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term(3, "forged")}})
	otherApp.OwnerReferences[0].Name = "shop-6d5f7c9b8"
	deleted := pod("gone", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term(3, "old")}})
	deleted.DeletionTimestamp = &metav1.Time{}
	other := pod("other", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term(3, "x")}})
	other.Status.InitContainerStatuses[0].Name = "something-else"
	for _, tc := range []struct {
		name    string
		pods    []corev1.Pod
		wantPod string
		wantMsg string
	}{
		{"no pods", nil, "", ""},
		{"migrate failed otherwise", []corev1.Pod{pod("a", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term(1, "db down")}})}, "", ""},
		{"migrate succeeded", []corev1.Pod{pod("a", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term(0, "")}})}, "", ""},
		{"terminated now", []corev1.Pod{pod("a", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: term(3, " pepper mismatch: x\n")}})}, "a", "pepper mismatch: x"},
		{"restarting after it", []corev1.Pod{pod("b", corev1.ContainerStatus{
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: term(3, "pepper mismatch: y")}})}, "b", "pepper mismatch: y"},
		{"a later run succeeded", []corev1.Pod{pod("c", corev1.ContainerStatus{
			State:                corev1.ContainerState{Terminated: term(0, "")},
			LastTerminationState: corev1.ContainerState{Terminated: term(3, "pepper mismatch: z")}})}, "", ""},
		{"running again", []corev1.Pod{pod("d", corev1.ContainerStatus{
			State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			LastTerminationState: corev1.ContainerState{Terminated: term(3, "pepper mismatch: z")}})}, "", ""},
		{"deleted pods and other containers do not count", []corev1.Pod{deleted, other}, "", ""},
		{"pods that are not the Deployment's do not count", []corev1.Pod{stray, otherApp}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, msg, ok := PepperMismatch(tc.pods, "auth-authserver")
			if p != tc.wantPod || msg != tc.wantMsg || ok != (tc.wantPod != "") {
				t.Errorf("PepperMismatch = %q, %q, %v; want %q, %q", p, msg, ok, tc.wantPod, tc.wantMsg)
			}
		})
	}
}
