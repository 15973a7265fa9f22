package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthProxy is the proxy that enforces an AuthPolicy, which decides the object the
// operator renders (controllers/DESIGN.md, "Protecting other apps").
// +kubebuilder:validation:Enum=EnvoyGateway;Traefik;IngressNginx;ExternalAuthFilter
type AuthProxy string

// The proxies an AuthPolicy can wire.
const (
	// ProxyEnvoyGateway renders an Envoy Gateway SecurityPolicy (extAuth) targeting the HTTPRoute.
	ProxyEnvoyGateway AuthProxy = "EnvoyGateway"
	// ProxyTraefik renders a Traefik Middleware (forwardAuth); on an Ingress it also
	// sets the router.middlewares annotation, on an HTTPRoute the route's owner adds
	// the ExtensionRef filter.
	ProxyTraefik AuthProxy = "Traefik"
	// ProxyIngressNginx sets ingress-nginx's auth-url, auth-signin and
	// auth-response-headers annotations on the Ingress.
	ProxyIngressNginx AuthProxy = "IngressNginx"
	// ProxyExternalAuthFilter is the Gateway API's own HTTPRoute ExternalAuth filter
	// (NGINX Gateway Fabric, and any implementation that supports it): the route's
	// owner adds the filter; the operator says which and checks it is there.
	ProxyExternalAuthFilter AuthProxy = "ExternalAuthFilter"
)

// AuthProtocol is how the proxy calls the check.
// +kubebuilder:validation:Enum=HTTP;GRPC
type AuthProtocol string

// The protocols of the check.
const (
	ProtocolHTTP AuthProtocol = "HTTP"
	ProtocolGRPC AuthProtocol = "GRPC"
)

// AuthPolicySpec says that one route or Ingress requires a session of an AuthStack.
// +kubebuilder:validation:XValidation:rule="self.targetRef.kind == 'HTTPRoute' ? self.proxy in ['EnvoyGateway', 'Traefik', 'ExternalAuthFilter'] : self.proxy in ['Traefik', 'IngressNginx']",message="proxy must be EnvoyGateway, Traefik or ExternalAuthFilter for an HTTPRoute, Traefik or IngressNginx for an Ingress"
// +kubebuilder:validation:XValidation:rule="!has(self.protocol) || self.protocol == 'HTTP' || self.proxy in ['EnvoyGateway', 'ExternalAuthFilter']",message="protocol GRPC needs proxy EnvoyGateway or ExternalAuthFilter: Traefik and nginx call the check over HTTP"
type AuthPolicySpec struct {
	// AuthStackRef names the AuthStack whose sessions the target requires. Its
	// namespace must be listed in that stack's edgeAuth.policyNamespaces (or be
	// the stack's own).
	AuthStackRef AuthStackReference `json:"authStackRef"`
	// TargetRef is the HTTPRoute or Ingress to protect, in the policy's namespace.
	TargetRef PolicyTargetRef `json:"targetRef"`
	// Proxy is the proxy that serves the target.
	Proxy AuthProxy `json:"proxy"`
	// Protocol of the check: HTTP (/auth/check) or GRPC (Envoy's ext_authz on the
	// authserver's grpc-authz port). Defaults to GRPC for EnvoyGateway (the check then
	// sees the whole request, so a browser is sent back to the page it asked for),
	// HTTP otherwise.
	// +optional
	Protocol AuthProtocol `json:"protocol,omitempty"`
}

// AuthStackReference names an AuthStack.
type AuthStackReference struct {
	// Name of the AuthStack.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=38
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Namespace of the AuthStack; empty is the policy's.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// PolicyTargetRef names the object an AuthPolicy protects, in its namespace.
// +kubebuilder:validation:XValidation:rule="(self.group == 'gateway.networking.k8s.io' && self.kind == 'HTTPRoute') || (self.group == 'networking.k8s.io' && self.kind == 'Ingress')",message="targetRef must be a gateway.networking.k8s.io HTTPRoute or a networking.k8s.io Ingress"
type PolicyTargetRef struct {
	// Group of the target: gateway.networking.k8s.io or networking.k8s.io.
	// +kubebuilder:validation:Enum=gateway.networking.k8s.io;networking.k8s.io
	Group string `json:"group"`
	// Kind of the target: HTTPRoute or Ingress.
	// +kubebuilder:validation:Enum=HTTPRoute;Ingress
	Kind string `json:"kind"`
	// Name of the target.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// AuthPolicyStatus is what the operator observed.
type AuthPolicyStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (the wiring is in place), with a message that says what the
	// target's owner still has to add when the operator may not write it.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AuthPolicy makes one HTTPRoute or Ingress require a session of an AuthStack: the
// operator renders what the proxy in use needs (controllers/authpolicy.go). Browsers
// without a session are sent to the stack's sign-in URL, API calls get 401.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=leanauth
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Proxy",type=string,JSONPath=`.spec.proxy`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
type AuthPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AuthPolicySpec   `json:"spec"`
	Status AuthPolicyStatus `json:"status,omitempty"`
}

// AuthPolicyList is a list of AuthPolicies.
// +kubebuilder:object:root=true
type AuthPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AuthPolicy{}, &AuthPolicyList{})
}
