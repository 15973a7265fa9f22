package resources

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// AuthServerService renders the ClusterIP Service in front of the authserver pods.
func AuthServerService(stack *authv1alpha1.AuthStack) *corev1.Service {
	return service(stack, AuthServerName(stack), ComponentAuthServer, false,
		servicePort(PortNameHTTP, AuthServerHTTPPort), servicePort(PortNameMetrics, AuthServerMetricsPort), grpcAuthzServicePort())
}

// InClusterURL is the authserver's address inside the cluster.
func InClusterURL(stack *authv1alpha1.AuthStack) string {
	return "http://" + AuthServerName(stack) + "." + stack.Namespace + ".svc:3000"
}

// grpcAuthzServicePort is the ext_authz gRPC port; appProtocol h2c tells
// gateways (Envoy Gateway) to speak plaintext HTTP/2 to it.
func grpcAuthzServicePort() corev1.ServicePort {
	p := servicePort(PortNameGRPCAuthz, AuthServerGRPCAuthzPort)
	p.AppProtocol = ptr.To("kubernetes.io/h2c")
	return p
}
