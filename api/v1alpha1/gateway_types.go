package v1alpha1

// GatewaySpec exposes the authserver through a Gateway API HTTPRoute attached to
// Gateways that already exist (the platform team's). TLS is the Gateway's business:
// the route carries no certificate and no secret. It can run beside spec.ingress
// during a migration. The route is created only when the cluster serves the
// gateway.networking.k8s.io/v1 HTTPRoute kind; otherwise the GatewayRouteReady
// condition says so.
// +kubebuilder:validation:XValidation:rule="!has(self.enabled) || !self.enabled || (has(self.parentRefs) && size(self.parentRefs) > 0)",message="gateway.parentRefs must name at least one Gateway when gateway.enabled is true"
type GatewaySpec struct {
	// Enabled creates the HTTPRoute.
	// +optional
	// +kubebuilder:default=false
	Enabled bool `json:"enabled"`
	// ParentRefs are the Gateways (or listeners of them) the route attaches to.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	ParentRefs []GatewayParentRef `json:"parentRefs,omitempty"`
	// Hostnames the route serves, for example auth.example.com. Empty: every
	// hostname of the listeners it attaches to.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +listType=atomic
	Hostnames []string `json:"hostnames,omitempty"`
	// Path prefix routed to the authserver: /auth, the prefix of every authserver
	// route (any other prefix would answer 404).
	// +optional
	// +kubebuilder:default="/auth"
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == '/auth'",message="gateway.path must be /auth: the authserver serves every route under /auth, so another prefix would answer 404"
	Path string `json:"path,omitempty"`
}

// GatewayParentRef names a Gateway, and optionally one of its listeners.
type GatewayParentRef struct {
	// Name of the Gateway.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// Namespace of the Gateway; empty is the AuthStack's. The Gateway's listener
	// must allow routes from the AuthStack's namespace (allowedRoutes).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
	// SectionName is the listener's name, to attach to one listener only.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	SectionName string `json:"sectionName,omitempty"`
}

// EdgeAuthSpec configures forward auth: the authserver's /auth/check (and its
// ext_authz gRPC Check) that proxies call for the apps an AuthPolicy protects.
type EdgeAuthSpec struct {
	// SignInURL is where the check sends a browser without a session (with the
	// page it asked for in the rd query parameter); API calls get 401. Defaults
	// to frontendURL + /login (the authserver's AUTH_SIGNIN_URL).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="edgeAuth.signInURL must be an https URL (http only for localhost)"
	SignInURL string `json:"signInURL,omitempty"`
	// RedirectHosts are the hosts the check may send a browser back to after sign-in
	// (*.example.com matches subdomains): never an open redirect. Defaults to the
	// host of frontendURL (the authserver's AUTH_REDIRECT_HOSTS).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +listType=atomic
	RedirectHosts []string `json:"redirectHosts,omitempty"`
	// PolicyNamespaces are the namespaces whose AuthPolicies may use this stack
	// (besides its own). The operator lets their HTTPRoutes and SecurityPolicies
	// reference the authserver Service (a ReferenceGrant, when the Gateway API is
	// served) and refuses policies from any other namespace.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	PolicyNamespaces []string `json:"policyNamespaces,omitempty"`
}
