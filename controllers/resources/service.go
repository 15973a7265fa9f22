package resources

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// AuthServerService renders the ClusterIP Service in front of the authserver pods.
func AuthServerService(stack *authv1alpha1.AuthStack) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(stack, AuthServerName(stack), ComponentAuthServer),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: SelectorLabels(stack, ComponentAuthServer),
			Ports: []corev1.ServicePort{
				{Name: PortNameHTTP, Port: AuthServerHTTPPort, TargetPort: intstr.FromString(PortNameHTTP), Protocol: corev1.ProtocolTCP},
				{Name: PortNameMetrics, Port: AuthServerMetricsPort, TargetPort: intstr.FromString(PortNameMetrics), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// InClusterURL is the authserver's address inside the cluster.
func InClusterURL(stack *authv1alpha1.AuthStack) string {
	return "http://" + AuthServerName(stack) + "." + stack.Namespace + ".svc:3000"
}
