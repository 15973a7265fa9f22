package resources

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// AuthServerHPA renders the HorizontalPodAutoscaler of the authserver, or nil when
// autoscaling is disabled (the reconciler then deletes one it made before).
func AuthServerHPA(stack *authv1alpha1.AuthStack) *autoscalingv2.HorizontalPodAutoscaler {
	if !AutoscalingEnabled(stack) {
		return nil
	}
	as := stack.Spec.AuthServer.Autoscaling
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: objectMeta(stack, AuthServerName(stack), ComponentAuthServer),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: "apps/v1", Kind: "Deployment", Name: AuthServerName(stack),
			},
			MinReplicas: ptr.To(as.MinReplicas),
			MaxReplicas: as.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{
				resourceMetric("cpu", as.TargetCPUUtilization),
				resourceMetric("memory", as.TargetMemoryUtilization),
			},
		},
	}
}

func resourceMetric(name string, utilization int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceName(name),
			Target: autoscalingv2.MetricTarget{
				Type:               autoscalingv2.UtilizationMetricType,
				AverageUtilization: ptr.To(utilization),
			},
		},
	}
}
