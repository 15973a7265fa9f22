package resources

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// HTTPRouteGVK is the Gateway API route kind. The route is applied as an
// unstructured object: the cluster may not serve the kind, and the operator's
// scheme does not register it (a watch on it would stop the manager starting).
var HTTPRouteGVK = schema.GroupVersionKind{Group: gatewayv1.GroupName, Version: "v1", Kind: "HTTPRoute"}

// GatewayEnabled says whether the stack asks for the HTTPRoute.
func GatewayEnabled(stack *authv1alpha1.AuthStack) bool { return stack.Spec.Gateway.Enabled }

// AuthServerHTTPRoute renders the HTTPRoute that exposes the authserver through the
// Gateways of spec.gateway, or nil when it is disabled. It names no certificate and
// no Secret: TLS is terminated by the Gateway's listeners.
func AuthServerHTTPRoute(stack *authv1alpha1.AuthStack) (*unstructured.Unstructured, error) {
	spec := stack.Spec.Gateway
	if !spec.Enabled {
		return nil, nil
	}
	route := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: HTTPRouteGVK.GroupVersion().String(), Kind: HTTPRouteGVK.Kind},
		ObjectMeta: objectMeta(stack, AuthServerName(stack), ComponentAuthServer),
		Spec: gatewayv1.HTTPRouteSpec{
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
					Type:  ptr.To(gatewayv1.PathMatchPathPrefix),
					Value: ptr.To(gatewayPath(stack)),
				}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
					Name: gatewayv1.ObjectName(AuthServerName(stack)),
					Port: ptr.To(gatewayv1.PortNumber(AuthServerHTTPPort)),
				}}}},
			}},
		},
	}
	for _, p := range spec.ParentRefs {
		ref := gatewayv1.ParentReference{Name: gatewayv1.ObjectName(p.Name)}
		if p.Namespace != "" {
			ref.Namespace = ptr.To(gatewayv1.Namespace(p.Namespace))
		}
		if p.SectionName != "" {
			ref.SectionName = ptr.To(gatewayv1.SectionName(p.SectionName))
		}
		route.Spec.ParentRefs = append(route.Spec.ParentRefs, ref)
	}
	for _, h := range spec.Hostnames {
		route.Spec.Hostnames = append(route.Spec.Hostnames, gatewayv1.Hostname(h))
	}
	return toUnstructured(route, HTTPRouteGVK)
}

func gatewayPath(stack *authv1alpha1.AuthStack) string {
	if p := stack.Spec.Gateway.Path; p != "" {
		return p
	}
	return "/auth"
}

// GatewayNamespaces are the namespaces of the Gateways the route attaches to, in
// the order of spec.gateway.parentRefs, without repeats.
func GatewayNamespaces(stack *authv1alpha1.AuthStack) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range stack.Spec.Gateway.ParentRefs {
		ns := p.Namespace
		if ns == "" {
			ns = stack.Namespace
		}
		if !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	return out
}

// toUnstructured converts a typed object of a kind outside the scheme into the
// unstructured body the operator applies (no status, no creationTimestamp).
func toUnstructured(obj runtime.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", gvk.Kind, err)
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u, nil
}
