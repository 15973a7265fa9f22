package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The kinds an AuthPolicy renders or touches, applied as unstructured objects: the
// cluster may serve none of them.
var (
	SecurityPolicyGVK = egv1a1.GroupVersion.WithKind("SecurityPolicy")
	MiddlewareGVK     = schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "Middleware"}
	ReferenceGrantGVK = schema.GroupVersionKind{Group: gatewayv1.GroupName, Version: "v1beta1", Kind: "ReferenceGrant"}
	IngressGVK        = schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"}
)

// The check's contract with the proxies (authserver/edge): the headers a
// successful check sets for the app, and the ones it reads from the request.
var (
	// AuthResponseHeaders are all the check sets (the edge package's
	// constants, TestAuthResponseHeadersAreTheChecks): a proxy replaces only
	// the client's headers it copies from the check, so listing fewer lets a
	// client forge the others (TestRealNodeEdgeProxies saw X-Auth-Session-Id,
	// X-Auth-Level and X-Auth-Time reach the app).
	AuthResponseHeaders = []string{"X-Auth-User-Id", "X-Auth-Email", "X-Auth-Session-Id", "X-Auth-Level", "X-Auth-Time"}
	// authHeadersRegex is every header the check owns, for Traefik: its
	// forwardAuth removes the client's headers matching it, then copies the
	// check's. Any case, and _ for -: Go canonicalises X_Auth_User_Id to
	// X_auth_user_id, which servers that read _ as - (CGI, Rack) take for the check's.
	authHeadersRegex = "(?i)^x[-_]auth[-_]"
	// checkRequestHeaders are what an HTTP check reads besides Authorization (the
	// session cookie, whether the client is a browser, and the URL it asked for).
	checkRequestHeaders = []string{"Cookie", "Accept", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri"}
)

// Annotations an AuthPolicy sets on an Ingress.
const (
	AnnotationNginxAuthURL             = "nginx.ingress.kubernetes.io/auth-url"
	AnnotationNginxAuthSignin          = "nginx.ingress.kubernetes.io/auth-signin"
	AnnotationNginxAuthResponseHeaders = "nginx.ingress.kubernetes.io/auth-response-headers"
	AnnotationTraefikMiddlewares       = "traefik.ingress.kubernetes.io/router.middlewares"
)

// CheckPath is the authserver's forward-auth endpoint.
const CheckPath = "/auth/check"

// CheckURL is the check's in-cluster URL, which proxies call for every request.
func CheckURL(stack *authv1alpha1.AuthStack) string {
	return "http://" + AuthServerName(stack) + "." + stack.Namespace + ".svc.cluster.local:" + strconv.Itoa(AuthServerHTTPPort) + CheckPath
}

// SignInURL is where a browser without a session goes: edgeAuth.signInURL, else
// frontendURL + /login (the authserver's own default for AUTH_SIGNIN_URL).
func SignInURL(stack *authv1alpha1.AuthStack) string {
	if u := stack.Spec.EdgeAuth.SignInURL; u != "" {
		return u
	}
	return strings.TrimSuffix(stack.Spec.AuthServer.FrontendURL, "/") + "/login"
}

// PolicyAllowed says whether the stack serves AuthPolicies of namespace ns.
func PolicyAllowed(stack *authv1alpha1.AuthStack, ns string) bool {
	return ns == stack.Namespace || slices.Contains(stack.Spec.EdgeAuth.PolicyNamespaces, ns)
}

// PolicyProtocol is the policy's protocol with its default.
func PolicyProtocol(p *authv1alpha1.AuthPolicy) authv1alpha1.AuthProtocol {
	if p.Spec.Protocol != "" {
		return p.Spec.Protocol
	}
	if p.Spec.Proxy == authv1alpha1.ProxyEnvoyGateway {
		return authv1alpha1.ProtocolGRPC
	}
	return authv1alpha1.ProtocolHTTP
}

// AuthPolicyObjectName names the object an AuthPolicy owns (SecurityPolicy or
// Middleware): <policy>-authstack, shortened with a hash to fit 253 characters.
func AuthPolicyObjectName(p *authv1alpha1.AuthPolicy) string {
	const suffix = "-authstack"
	if len(p.Name)+len(suffix) <= 253 {
		return p.Name + suffix
	}
	sum := sha256.Sum256([]byte(p.Name))
	return p.Name[:253-len(suffix)-9] + "-" + hex.EncodeToString(sum[:4]) + suffix
}

// authPolicyMeta is the metadata of an object the policy owns (garbage-collected with it).
func authPolicyMeta(p *authv1alpha1.AuthPolicy, gvk schema.GroupVersionKind) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      AuthPolicyObjectName(p),
		Namespace: p.Namespace,
		Labels:    map[string]string{LabelManagedBy: FieldOwner, LabelPartOf: "authstack"},
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: authv1alpha1.GroupVersion.String(), Kind: "AuthPolicy", Name: p.Name, UID: p.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}},
	}
}

// AuthPolicyOwned renders the object the policy owns in its namespace: an Envoy
// Gateway SecurityPolicy, a Traefik Middleware, or nil (nginx and the Gateway API
// filter need none). Pure.
func AuthPolicyOwned(p *authv1alpha1.AuthPolicy, stack *authv1alpha1.AuthStack) (*unstructured.Unstructured, error) {
	switch p.Spec.Proxy {
	case authv1alpha1.ProxyEnvoyGateway:
		return SecurityPolicy(p, stack)
	case authv1alpha1.ProxyTraefik:
		return TraefikMiddleware(p, stack), nil
	}
	return nil, nil
}

// authServerBackend is the authserver Service's port for protocol, by number
// (Envoy Gateway and the Gateway API need it), in the stack's namespace.
func authServerBackend(stack *authv1alpha1.AuthStack, protocol authv1alpha1.AuthProtocol) gatewayv1.BackendObjectReference {
	port := gatewayv1.PortNumber(AuthServerHTTPPort)
	if protocol == authv1alpha1.ProtocolGRPC {
		port = gatewayv1.PortNumber(AuthServerGRPCAuthzPort)
	}
	return gatewayv1.BackendObjectReference{
		Name:      gatewayv1.ObjectName(AuthServerName(stack)),
		Namespace: ptr.To(gatewayv1.Namespace(stack.Namespace)),
		Port:      ptr.To(port),
	}
}

// SecurityPolicy renders the Envoy Gateway SecurityPolicy that sends every request
// of the target HTTPRoute through the check: gRPC ext_authz (the default: Envoy
// sends the whole request) or HTTP /auth/check. It fails closed (failOpen false).
func SecurityPolicy(p *authv1alpha1.AuthPolicy, stack *authv1alpha1.AuthStack) (*unstructured.Unstructured, error) {
	sp := &egv1a1.SecurityPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: SecurityPolicyGVK.GroupVersion().String(), Kind: SecurityPolicyGVK.Kind},
		ObjectMeta: authPolicyMeta(p, SecurityPolicyGVK),
	}
	sp.Spec.TargetRefs = []gatewayv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gatewayv1.LocalPolicyTargetReference{
		Group: gatewayv1.GroupName, Kind: "HTTPRoute", Name: gatewayv1.ObjectName(p.Spec.TargetRef.Name),
	}}}
	protocol := PolicyProtocol(p)
	backend := []egv1a1.BackendRef{{BackendObjectReference: authServerBackend(stack, protocol)}}
	ext := &egv1a1.ExtAuth{FailOpen: ptr.To(false)}
	if protocol == authv1alpha1.ProtocolGRPC {
		ext.GRPC = &egv1a1.GRPCExtAuthService{BackendCluster: egv1a1.BackendCluster{BackendRefs: backend}}
	} else {
		ext.HTTP = &egv1a1.HTTPExtAuthService{
			BackendCluster:   egv1a1.BackendCluster{BackendRefs: backend},
			PathOverride:     ptr.To(CheckPath),
			HeadersToBackend: slices.Clone(AuthResponseHeaders),
		}
		ext.HeadersToExtAuth = slices.Clone(checkRequestHeaders)
	}
	sp.Spec.ExtAuth = ext
	return toUnstructured(sp, SecurityPolicyGVK)
}

// TraefikMiddleware renders the Traefik forwardAuth Middleware. Traefik sets the
// X-Forwarded-* headers itself (trustForwardHeader false: a client's are not
// believed) and replaces all the client's X-Auth-* headers with the check's.
func TraefikMiddleware(p *authv1alpha1.AuthPolicy, stack *authv1alpha1.AuthStack) *unstructured.Unstructured {
	meta := authPolicyMeta(p, MiddlewareGVK)
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{
			"name": meta.Name, "namespace": meta.Namespace, "labels": stringMap(meta.Labels),
			"ownerReferences": []any{map[string]any{
				"apiVersion": meta.OwnerReferences[0].APIVersion, "kind": "AuthPolicy", "name": p.Name, "uid": string(p.UID),
				"controller": true, "blockOwnerDeletion": true,
			}},
		},
		"spec": map[string]any{"forwardAuth": map[string]any{
			"address":                  CheckURL(stack),
			"trustForwardHeader":       false,
			"authResponseHeadersRegex": authHeadersRegex,
		}},
	}}
	u.SetGroupVersionKind(MiddlewareGVK)
	return u
}

// TargetAnnotations are the annotations the policy owns on its Ingress target
// (nil for an HTTPRoute): applied with server-side apply under the policy's own
// field manager, without force, so only these keys are ours.
func TargetAnnotations(p *authv1alpha1.AuthPolicy, stack *authv1alpha1.AuthStack) map[string]string {
	if p.Spec.TargetRef.Kind != IngressGVK.Kind {
		return nil
	}
	switch p.Spec.Proxy {
	case authv1alpha1.ProxyIngressNginx:
		return map[string]string{
			AnnotationNginxAuthURL:             CheckURL(stack),
			AnnotationNginxAuthSignin:          SignInURL(stack),
			AnnotationNginxAuthResponseHeaders: strings.Join(AuthResponseHeaders, ","),
		}
	case authv1alpha1.ProxyTraefik:
		return map[string]string{AnnotationTraefikMiddlewares: p.Namespace + "-" + AuthPolicyObjectName(p) + "@kubernetescrd"}
	}
	return nil
}

// TargetPatch is the server-side apply body for the Ingress: only its identity and
// the annotations the policy owns (none: the body that gives them all back).
func TargetPatch(p *authv1alpha1.AuthPolicy, annotations map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{}}}
	u.SetGroupVersionKind(IngressGVK)
	u.SetName(p.Spec.TargetRef.Name)
	u.SetNamespace(p.Namespace)
	if len(annotations) > 0 {
		u.SetAnnotations(annotations)
	}
	return u
}

// PolicyFieldOwner is the field manager of one policy's annotations on its target.
// Its own manager (not the operator's) makes two policies on one Ingress conflict
// instead of silently taking each other's keys.
func PolicyFieldOwner(p *authv1alpha1.AuthPolicy) string {
	name := FieldOwner + "/authpolicy/" + p.Name
	if len(name) > 128 {
		sum := sha256.Sum256([]byte(p.Name))
		name = name[:119] + "-" + hex.EncodeToString(sum[:4])
	}
	return name
}

// RouteFilter is the filter the owner of the HTTPRoute target adds to every rule
// of the route (the operator never writes another team's route rules: that list is
// atomic, so applying one filter would take the whole list): the Gateway API
// ExternalAuth filter, or for Traefik an ExtensionRef to the Middleware. nil when
// the proxy needs none.
func RouteFilter(p *authv1alpha1.AuthPolicy, stack *authv1alpha1.AuthStack) *gatewayv1.HTTPRouteFilter {
	if p.Spec.TargetRef.Kind != HTTPRouteGVK.Kind {
		return nil
	}
	switch p.Spec.Proxy {
	case authv1alpha1.ProxyTraefik:
		return &gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterExtensionRef, ExtensionRef: &gatewayv1.LocalObjectReference{
			Group: gatewayv1.Group(MiddlewareGVK.Group), Kind: gatewayv1.Kind(MiddlewareGVK.Kind), Name: gatewayv1.ObjectName(AuthPolicyObjectName(p)),
		}}
	case authv1alpha1.ProxyExternalAuthFilter:
		protocol := PolicyProtocol(p)
		ext := &gatewayv1.HTTPExternalAuthFilter{BackendRef: authServerBackend(stack, protocol)}
		if protocol == authv1alpha1.ProtocolGRPC {
			ext.ExternalAuthProtocol = gatewayv1.HTTPRouteExternalAuthGRPCProtocol
			ext.GRPCAuthConfig = &gatewayv1.GRPCAuthConfig{}
		} else {
			ext.ExternalAuthProtocol = gatewayv1.HTTPRouteExternalAuthHTTPProtocol
			ext.HTTPAuthConfig = &gatewayv1.HTTPAuthConfig{
				Path:                   CheckPath,
				AllowedRequestHeaders:  slices.Clone(checkRequestHeaders),
				AllowedResponseHeaders: slices.Clone(AuthResponseHeaders),
			}
		}
		return &gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterExternalAuth, ExternalAuth: ext}
	}
	return nil
}

// RouteMissesFilter names the rules of route (by index) that do not carry want.
func RouteMissesFilter(route *gatewayv1.HTTPRoute, want *gatewayv1.HTTPRouteFilter) []int {
	var missing []int
	for i, rule := range route.Spec.Rules {
		found := false
		for _, f := range rule.Filters {
			if filterMatches(f, *want) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, i)
		}
	}
	return missing
}

// filterMatches compares what the wiring depends on: the type, the Middleware, or
// the ExternalAuth filter's protocol and backend (Service, namespace, port).
func filterMatches(have, want gatewayv1.HTTPRouteFilter) bool {
	if have.Type != want.Type {
		return false
	}
	switch want.Type {
	case gatewayv1.HTTPRouteFilterExtensionRef:
		return have.ExtensionRef != nil && *have.ExtensionRef == *want.ExtensionRef
	case gatewayv1.HTTPRouteFilterExternalAuth:
		h, w := have.ExternalAuth, want.ExternalAuth
		return h != nil && h.ExternalAuthProtocol == w.ExternalAuthProtocol && h.BackendRef.Name == w.BackendRef.Name &&
			ptr.Deref(h.BackendRef.Namespace, "") == ptr.Deref(w.BackendRef.Namespace, "") && ptr.Deref(h.BackendRef.Port, 0) == ptr.Deref(w.BackendRef.Port, 0) &&
			ptr.Deref(h.BackendRef.Kind, "Service") == "Service" && ptr.Deref(h.BackendRef.Group, "") == ""
	}
	return false
}

// StackReferenceGrant renders the ReferenceGrant that lets the HTTPRoutes (their
// ExternalAuth filter) and Envoy Gateway SecurityPolicies of edgeAuth.policyNamespaces
// reference the authserver Service, or nil when no other namespace is listed.
func StackReferenceGrant(stack *authv1alpha1.AuthStack) (*unstructured.Unstructured, error) {
	var from []map[string]any
	for _, ns := range stack.Spec.EdgeAuth.PolicyNamespaces {
		if ns == stack.Namespace {
			continue
		}
		from = append(from,
			map[string]any{"group": gatewayv1.GroupName, "kind": "HTTPRoute", "namespace": ns},
			map[string]any{"group": egv1a1.GroupName, "kind": "SecurityPolicy", "namespace": ns})
	}
	if len(from) == 0 {
		return nil, nil
	}
	meta := objectMeta(stack, AuthServerName(stack), ComponentAuthServer)
	u := &unstructured.Unstructured{Object: map[string]any{}}
	m, err := toUnstructured(&metav1.PartialObjectMetadata{ObjectMeta: meta}, ReferenceGrantGVK)
	if err != nil {
		return nil, err
	}
	u.Object["metadata"] = m.Object["metadata"]
	fromAny := make([]any, len(from))
	for i, f := range from {
		fromAny[i] = f
	}
	u.Object["spec"] = map[string]any{
		"from": fromAny,
		"to":   []any{map[string]any{"group": "", "kind": "Service", "name": AuthServerName(stack)}},
	}
	u.SetGroupVersionKind(ReferenceGrantGVK)
	return u, nil
}

func anySlice(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

// describeFilter is a short description of a route filter for a condition message.
func DescribeFilter(f *gatewayv1.HTTPRouteFilter) string {
	switch f.Type {
	case gatewayv1.HTTPRouteFilterExtensionRef:
		return fmt.Sprintf("{type: ExtensionRef, extensionRef: {group: %s, kind: %s, name: %s}}", f.ExtensionRef.Group, f.ExtensionRef.Kind, f.ExtensionRef.Name)
	case gatewayv1.HTTPRouteFilterExternalAuth:
		e := f.ExternalAuth
		return fmt.Sprintf("{type: ExternalAuth, externalAuth: {protocol: %s, backendRef: {name: %s, namespace: %s, port: %d}, ...}} (the full filter: docs/edge-auth.md)",
			e.ExternalAuthProtocol, e.BackendRef.Name, ptr.Deref(e.BackendRef.Namespace, ""), ptr.Deref(e.BackendRef.Port, 0))
	}
	return string(f.Type)
}
