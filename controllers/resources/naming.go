// Package resources holds the pure builders of every object the operator renders:
// one function per object, taking the AuthStack (and what was observed for it) and
// returning the desired object. They never talk to the API server and are deterministic:
// the same input renders byte-identical output, so an operator restart never rolls pods.
package resources

import (
	"maps"
	"slices"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// FieldOwner is the one server-side apply field manager of the operator.
const FieldOwner = "authstack-operator"

// Label keys and values.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"

	ComponentAuthServer = "authserver"
	ComponentPepper     = "pepper"
)

// Annotation keys.
const (
	// AnnotationConfigHash on a pod template holds the hash of every Secret value and setting
	// the pods read at start, so a rotated Secret rolls the pods.
	AnnotationConfigHash = "auth.leanauth.dev/config-hash"
	// AnnotationRetain on a generated Secret says the operator never deletes it.
	AnnotationRetain = "auth.leanauth.dev/retain"
)

// Ports of the authserver.
const (
	AuthServerHTTPPort    = 3000
	AuthServerMetricsPort = 9090
	PortNameHTTP          = "http"
	PortNameMetrics       = "metrics"
	// The Envoy ext_authz gRPC Check (AUTH_GRPC_PORT, plaintext HTTP/2): what an
	// Envoy Gateway SecurityPolicy's extAuth.grpc points at. The same values as the
	// edge-check branch, which adds the container and Service port.
	AuthServerGRPCAuthzPort = 9191
	PortNameGRPCAuthz       = "grpc-authz"
)

// Paths inside the authserver container.
const (
	PepperMountPath = "/var/run/authstack/pepper"
	PepperFileName  = "pepper"
	PepperSecretKey = "pepper"
)

// AuthServerName names the authserver Deployment, Service, HPA, PDB and Ingress.
func AuthServerName(stack *authv1alpha1.AuthStack) string { return stack.Name + "-authserver" }

// PepperSecretName names the generated pepper Secret.
func PepperSecretName(stack *authv1alpha1.AuthStack) string { return stack.Name + "-pepper" }

// TLSSecretName names the Ingress certificate Secret unless the spec names one.
func TLSSecretName(stack *authv1alpha1.AuthStack) string {
	if tls := stack.Spec.Ingress.TLS; tls != nil && tls.SecretName != "" {
		return tls.SecretName
	}
	return stack.Name + "-tls"
}

// SelectorLabels select the pods of one component of one stack. They never change,
// since a Deployment's selector is immutable.
func SelectorLabels(stack *authv1alpha1.AuthStack, component string) map[string]string {
	return map[string]string{
		LabelName:      component,
		LabelInstance:  stack.Name,
		LabelComponent: component,
	}
}

// Labels are the labels of every object of one component.
func Labels(stack *authv1alpha1.AuthStack, component string) map[string]string {
	l := SelectorLabels(stack, component)
	l[LabelPartOf] = "authstack"
	l[LabelManagedBy] = FieldOwner
	return l
}

// merged returns base with extra added; base wins on conflict.
func merged(extra, base map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	maps.Copy(out, extra)
	maps.Copy(out, base)
	return out
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
