package resources

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

func TestHPADisabled(t *testing.T) {
	s := sampleStack()
	s.Spec.AuthServer.Autoscaling.Enabled = ptr.To(false)
	if h := AuthServerHPA(s); h != nil {
		t.Errorf("HPA rendered with autoscaling disabled: %+v", h)
	}
}

func TestHPA(t *testing.T) {
	s := sampleStack()
	s.Spec.AuthServer.Autoscaling.Enabled = nil // unset means on
	h := AuthServerHPA(s)
	if h == nil {
		t.Fatal("no HPA with autoscaling on by default")
	}
	if h.APIVersion != "autoscaling/v2" || h.Kind != "HorizontalPodAutoscaler" || h.Name != "demo-authserver" || h.Namespace != testNamespace {
		t.Errorf("HPA = %s %s %s/%s", h.APIVersion, h.Kind, h.Namespace, h.Name)
	}
	dep := renderDeployment(s)
	ref := h.Spec.ScaleTargetRef
	if ref.APIVersion != dep.APIVersion || ref.Kind != dep.Kind || ref.Name != dep.Name {
		t.Errorf("scaleTargetRef = %+v, want the Deployment %s %s %s", ref, dep.APIVersion, dep.Kind, dep.Name)
	}
	if ptr.Deref(h.Spec.MinReplicas, 0) != 3 || h.Spec.MaxReplicas != 20 {
		t.Errorf("min/max = %v/%d, want 3/20", ptr.Deref(h.Spec.MinReplicas, 0), h.Spec.MaxReplicas)
	}
	checkMetrics(t, h, map[string]int32{"cpu": 70, "memory": 80})

	s.Spec.AuthServer.Autoscaling.MinReplicas = 5
	s.Spec.AuthServer.Autoscaling.MaxReplicas = 50
	s.Spec.AuthServer.Autoscaling.TargetCPUUtilization = 55
	s.Spec.AuthServer.Autoscaling.TargetMemoryUtilization = 65
	h = AuthServerHPA(s)
	if ptr.Deref(h.Spec.MinReplicas, 0) != 5 || h.Spec.MaxReplicas != 50 {
		t.Errorf("min/max = %v/%d, want 5/50", ptr.Deref(h.Spec.MinReplicas, 0), h.Spec.MaxReplicas)
	}
	checkMetrics(t, h, map[string]int32{"cpu": 55, "memory": 65})
}

func checkMetrics(t *testing.T, h *autoscalingv2.HorizontalPodAutoscaler, want map[string]int32) {
	t.Helper()
	got := map[string]int32{}
	for _, m := range h.Spec.Metrics {
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
			t.Errorf("metric %+v is not a resource metric", m)
			continue
		}
		if m.Resource.Target.Type != autoscalingv2.UtilizationMetricType || m.Resource.Target.AverageUtilization == nil {
			t.Errorf("metric %s target %+v is not an average utilization", m.Resource.Name, m.Resource.Target)
			continue
		}
		got[string(m.Resource.Name)] = *m.Resource.Target.AverageUtilization
	}
	if len(got) != len(want) || got["cpu"] != want["cpu"] || got["memory"] != want["memory"] {
		t.Errorf("metrics = %v, want %v", got, want)
	}
}
