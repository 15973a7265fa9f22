package resources

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

func TestAuthServerHTTPRoute(t *testing.T) {
	stack := sampleStack()
	if u, err := AuthServerHTTPRoute(stack); u != nil || err != nil {
		t.Fatalf("disabled: got %v, %v; want nil", u, err)
	}
	stack.Spec.Gateway = authv1alpha1.GatewaySpec{
		Enabled: true,
		ParentRefs: []authv1alpha1.GatewayParentRef{
			{Name: "public", Namespace: "edge", SectionName: "https"},
			{Name: "internal"},
		},
		Hostnames: []string{"auth.example.com"},
	}
	u, err := AuthServerHTTPRoute(stack)
	if err != nil {
		t.Fatal(err)
	}
	if u.GroupVersionKind() != HTTPRouteGVK || u.GetName() != AuthServerName(stack) || u.GetNamespace() != stack.Namespace {
		t.Fatalf("identity = %v %s/%s", u.GroupVersionKind(), u.GetNamespace(), u.GetName())
	}
	if _, has := u.Object["status"]; has {
		t.Error("the applied body carries a status")
	}
	route := &gatewayv1.HTTPRoute{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, route); err != nil {
		t.Fatal(err)
	}
	p := route.Spec.ParentRefs
	if len(p) != 2 || p[0].Name != "public" || ptr.Deref(p[0].Namespace, "") != "edge" || ptr.Deref(p[0].SectionName, "") != "https" ||
		p[1].Name != "internal" || p[1].Namespace != nil || p[1].SectionName != nil {
		t.Errorf("parentRefs = %+v", p)
	}
	if h := route.Spec.Hostnames; len(h) != 1 || h[0] != "auth.example.com" {
		t.Errorf("hostnames = %v", h)
	}
	if len(route.Spec.Rules) != 1 {
		t.Fatalf("rules = %+v", route.Spec.Rules)
	}
	r := route.Spec.Rules[0]
	if m := r.Matches; len(m) != 1 || *m[0].Path.Type != gatewayv1.PathMatchPathPrefix || *m[0].Path.Value != "/auth" {
		t.Errorf("matches = %+v", m)
	}
	if b := r.BackendRefs; len(b) != 1 || b[0].Name != gatewayv1.ObjectName(AuthServerName(stack)) || *b[0].Port != AuthServerHTTPPort || b[0].Namespace != nil {
		t.Errorf("backendRefs = %+v", b)
	}
	if len(r.Filters) != 0 {
		t.Errorf("filters = %+v: the route only routes", r.Filters)
	}
	if got := GatewayNamespaces(stack); len(got) != 2 || got[0] != "edge" || got[1] != stack.Namespace {
		t.Errorf("GatewayNamespaces = %v", got)
	}
}

func TestPublicURLPrefersTheIngressThenTheRoute(t *testing.T) {
	stack := sampleStack()
	stack.Spec.Ingress = authv1alpha1.IngressSpec{}
	stack.Spec.Gateway = authv1alpha1.GatewaySpec{Enabled: true, ParentRefs: []authv1alpha1.GatewayParentRef{{Name: "g"}}, Hostnames: []string{"login.example.com"}}
	if got := PublicURL(stack); got != "https://login.example.com/auth" {
		t.Errorf("route only: %q", got)
	}
	stack.Spec.Gateway.Hostnames = []string{"*.example.com"}
	if got := PublicURL(stack); got != InClusterURL(stack) {
		t.Errorf("wildcard hostname: %q, want the in-cluster URL", got)
	}
	stack.Spec.Ingress = authv1alpha1.IngressSpec{Enabled: true, Host: "auth.example.com"}
	if got := PublicURL(stack); got != "https://auth.example.com/auth" {
		t.Errorf("both: %q, want the Ingress", got)
	}
}
