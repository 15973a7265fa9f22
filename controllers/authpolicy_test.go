package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
)

// startPolicyOperator runs the AuthPolicy controller for the namespaces ns (its
// work queue too; the tests also call Reconcile directly).
func startPolicyOperator(t *testing.T, ns ...string) (*AuthPolicyReconciler, *writeCounter) {
	t.Helper()
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: testScheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: CacheOptions(ns), Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &writeCounter{}
	r := &AuthPolicyReconciler{Client: countingClient{Client: mgr.GetClient(), w: w}, APIReader: mgr.GetAPIReader()}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	return r, w
}

func policy(ns, name string, proxy authv1alpha1.AuthProxy, kind, target string) *authv1alpha1.AuthPolicy {
	group := gatewayv1.GroupName
	if kind == "Ingress" {
		group = "networking.k8s.io"
	}
	return &authv1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: authv1alpha1.AuthPolicySpec{
			AuthStackRef: authv1alpha1.AuthStackReference{Name: "auth"},
			TargetRef:    authv1alpha1.PolicyTargetRef{Group: group, Kind: kind, Name: target},
			Proxy:        proxy,
		},
	}
}

// policyReady reconciles the policy until its Ready reason is want, and returns the condition.
func policyReady(t *testing.T, r *AuthPolicyReconciler, ns, name, want string) metav1.Condition {
	t.Helper()
	var c *metav1.Condition
	eventually(t, name+" Ready reason "+want, func() error {
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key(ns, name)}); err != nil {
			return err
		}
		p := &authv1alpha1.AuthPolicy{}
		if err := k8s.Get(context.Background(), key(ns, name), p); err != nil {
			return err
		}
		c = meta.FindStatusCondition(p.Status.Conditions, authv1alpha1.ConditionReady)
		if c == nil || c.Reason != want || c.ObservedGeneration != p.Generation {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	return *c
}

func appRoute(ns, name string, filters ...gatewayv1.HTTPRouteFilter) *unstructured.Unstructured {
	route := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public"}}},
			Rules: []gatewayv1.HTTPRouteRule{{
				Filters:     filters,
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "shop", Port: ptr.To(gatewayv1.PortNumber(8080))}}}},
			}},
		},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(route)
	if err != nil {
		panic(err)
	}
	delete(m, "status")
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u
}

// TestAuthPolicyWiresEachProxy renders each proxy's wiring and has the real API
// server, with the upstream CRDs (Gateway API experimental channel, Envoy
// Gateway's SecurityPolicy, Traefik's Middleware), accept it; checks what the
// operator may not write (a route's rules) is reported, that another team's
// Ingress is patched only in the keys the policy owns, without force, and given
// back when the policy goes; and that nothing is written at rest.
func TestAuthPolicyWiresEachProxy(t *testing.T) {
	t.Parallel()
	installProxyCRDs(t)
	ctx := context.Background()
	ns := newNamespace(t)
	other := newNamespace(t)
	stack := sampleStack(ns, "auth")
	stack.Spec.EdgeAuth = authv1alpha1.EdgeAuthSpec{SignInURL: "https://login.example.com/signin"}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, key(ns, "auth"), stack); err != nil {
		t.Fatal(err)
	}
	r, writes := startPolicyOperator(t, ns, other)

	// 1. Envoy Gateway: a SecurityPolicy (gRPC by default, then HTTP) the upstream CRD accepts.
	if err := k8s.Create(ctx, appRoute(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	eg := policy(ns, "shop-eg", authv1alpha1.ProxyEnvoyGateway, "HTTPRoute", "shop")
	if err := k8s.Create(ctx, eg); err != nil {
		t.Fatal(err)
	}
	policyReady(t, r, ns, "shop-eg", authv1alpha1.ReasonWired)
	sp := &unstructured.Unstructured{}
	sp.SetGroupVersionKind(resources.SecurityPolicyGVK)
	if err := k8s.Get(ctx, key(ns, "shop-eg-authstack"), sp); err != nil {
		t.Fatal(err)
	}
	refs, _, _ := unstructured.NestedSlice(sp.Object, "spec", "extAuth", "grpc", "backendRefs")
	if len(refs) != 1 || refs[0].(map[string]any)["port"] != int64(resources.AuthServerGRPCAuthzPort) || refs[0].(map[string]any)["name"] != "auth-authserver" {
		t.Errorf("SecurityPolicy grpc backendRefs = %v", refs)
	}
	if ref := metav1.GetControllerOf(sp); ref == nil || ref.Kind != "AuthPolicy" || ref.Name != "shop-eg" {
		t.Errorf("SecurityPolicy controller = %+v: it must go with the policy", ref)
	}
	eventually(t, "protocol HTTP", func() error {
		p := &authv1alpha1.AuthPolicy{}
		if err := k8s.Get(ctx, key(ns, "shop-eg"), p); err != nil {
			return err
		}
		p.Spec.Protocol = authv1alpha1.ProtocolHTTP
		return k8s.Update(ctx, p)
	})
	policyReady(t, r, ns, "shop-eg", authv1alpha1.ReasonWired)
	eventually(t, "SecurityPolicy switched to HTTP", func() error {
		if err := k8s.Get(ctx, key(ns, "shop-eg-authstack"), sp); err != nil {
			return err
		}
		if p, _, _ := unstructured.NestedString(sp.Object, "spec", "extAuth", "http", "pathOverride"); p != resources.CheckPath {
			return fmt.Errorf("http.pathOverride = %q", p)
		}
		if _, has, _ := unstructured.NestedMap(sp.Object, "spec", "extAuth", "grpc"); has {
			return fmt.Errorf("grpc still set")
		}
		return nil
	})

	// 2. The Gateway API ExternalAuth filter: the route's owner adds it; until then FilterMissing.
	if err := k8s.Create(ctx, appRoute(ns, "blog")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, policy(ns, "blog-ngf", authv1alpha1.ProxyExternalAuthFilter, "HTTPRoute", "blog")); err != nil {
		t.Fatal(err)
	}
	c := policyReady(t, r, ns, "blog-ngf", authv1alpha1.ReasonFilterMissing)
	if !strings.Contains(c.Message, "ExternalAuth") || !strings.Contains(c.Message, "auth-authserver") {
		t.Errorf("FilterMissing message does not say which filter: %q", c.Message)
	}
	filter := resources.RouteFilter(policy(ns, "blog-ngf", authv1alpha1.ProxyExternalAuthFilter, "HTTPRoute", "blog"), stack)
	route := appRoute(ns, "blog", *filter)
	if err := k8s.Patch(ctx, route, client.Apply, client.FieldOwner("app-team-gitops"), client.ForceOwnership); err != nil { //nolint:staticcheck
		t.Fatalf("the upstream HTTPRoute CRD refused the rendered ExternalAuth filter: %v", err)
	}
	policyReady(t, r, ns, "blog-ngf", authv1alpha1.ReasonWired)

	// 3. Traefik on an Ingress: a Middleware, and one annotation applied without force.
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "docs", Annotations: map[string]string{"team": "docs"}},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: "docs", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
	}
	if err := k8s.Create(ctx, ing, client.FieldOwner("app-team-gitops")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, policy(ns, "docs-traefik", authv1alpha1.ProxyTraefik, "Ingress", "docs")); err != nil {
		t.Fatal(err)
	}
	policyReady(t, r, ns, "docs-traefik", authv1alpha1.ReasonWired)
	mw := &unstructured.Unstructured{}
	mw.SetGroupVersionKind(resources.MiddlewareGVK)
	if err := k8s.Get(ctx, key(ns, "docs-traefik-authstack"), mw); err != nil {
		t.Fatal(err)
	}
	if addr, _, _ := unstructured.NestedString(mw.Object, "spec", "forwardAuth", "address"); addr != "http://auth-authserver."+ns+".svc.cluster.local:3000/auth/check" {
		t.Errorf("forwardAuth.address = %q", addr)
	}
	if re, _, _ := unstructured.NestedString(mw.Object, "spec", "forwardAuth", "authResponseHeadersRegex"); re != `(?i)^x[-_]auth[-_]` {
		t.Errorf("forwardAuth.authResponseHeadersRegex = %q: the client's X-Auth-* headers would reach the app", re)
	}
	if err := k8s.Get(ctx, key(ns, "docs"), ing); err != nil {
		t.Fatal(err)
	}
	if got := ing.Annotations[resources.AnnotationTraefikMiddlewares]; got != ns+"-docs-traefik-authstack@kubernetescrd" || ing.Annotations["team"] != "docs" {
		t.Errorf("Ingress annotations = %v", ing.Annotations)
	}

	// At rest: no writes from any of the three. Rest comes once the manager's
	// cache holds what the steps above wrote: until then a reconcile (the
	// manager's own, on those writes' events, or ours) may read an older
	// object and write again (seen under load: 2 writes in the first round).
	eventually(t, "10 no-op reconciles of 3 policies send no write", func() error {
		before := writes.count()
		for range 10 {
			for _, name := range []string{"shop-eg", "blog-ngf", "docs-traefik"} {
				if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key(ns, name)}); err != nil {
					return err
				}
			}
		}
		if d := writes.count() - before; d != 0 {
			return fmt.Errorf("%d writes, the newest: %s", d, writes.recent())
		}
		return nil
	})

	// Deleting the policy gives the annotation back and keeps the team's own.
	if err := k8s.Delete(ctx, policy(ns, "docs-traefik", "", "", "")); err != nil {
		t.Fatal(err)
	}
	// The manager's own worker releases it: a direct Reconcile here would run
	// beside that worker on the same key (which controller-runtime never does)
	// and, reading a cache that has not seen the deletion yet, could apply the
	// annotation again after the worker released it.
	eventually(t, "annotation released and policy gone", func() error {
		if err := k8s.Get(ctx, key(ns, "docs"), ing); err != nil {
			return err
		}
		if _, still := ing.Annotations[resources.AnnotationTraefikMiddlewares]; still || ing.Annotations["team"] != "docs" {
			return fmt.Errorf("annotations %v", ing.Annotations)
		}
		if err := k8s.Get(ctx, key(ns, "docs-traefik"), &authv1alpha1.AuthPolicy{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("policy still there: %v", err)
		}
		return nil
	})

	// 4. ingress-nginx: a key another manager owns is a conflict, not taken.
	taken := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wiki"},
		Spec:       ing.Spec,
	}
	if err := k8s.Create(ctx, taken, client.FieldOwner("app-team-gitops")); err != nil {
		t.Fatal(err)
	}
	// The team's GitOps tool applies its own auth-url (server-side apply, as Argo CD and Flux do).
	applied := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"annotations": map[string]any{resources.AnnotationNginxAuthURL: "http://oauth2-proxy/check"}}}}
	applied.SetGroupVersionKind(resources.IngressGVK)
	applied.SetNamespace(ns)
	applied.SetName("wiki")
	if err := k8s.Patch(ctx, applied, client.Apply, client.FieldOwner("app-team-gitops")); err != nil { //nolint:staticcheck
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, policy(ns, "wiki-nginx", authv1alpha1.ProxyIngressNginx, "Ingress", "wiki")); err != nil {
		t.Fatal(err)
	}
	c = policyReady(t, r, ns, "wiki-nginx", authv1alpha1.ReasonTargetConflict)
	if err := k8s.Get(ctx, key(ns, "wiki"), taken); err != nil {
		t.Fatal(err)
	}
	if taken.Annotations[resources.AnnotationNginxAuthURL] != "http://oauth2-proxy/check" {
		t.Errorf("the other team's auth-url was overwritten: %v", taken.Annotations)
	}
	// Once the team drops its key, the policy sets all three.
	applied = &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"annotations": map[string]any{"team": "wiki"}}}}
	applied.SetGroupVersionKind(resources.IngressGVK)
	applied.SetNamespace(ns)
	applied.SetName("wiki")
	if err := k8s.Patch(ctx, applied, client.Apply, client.FieldOwner("app-team-gitops")); err != nil { //nolint:staticcheck
		t.Fatal(err)
	}
	policyReady(t, r, ns, "wiki-nginx", authv1alpha1.ReasonWired)
	if err := k8s.Get(ctx, key(ns, "wiki"), taken); err != nil {
		t.Fatal(err)
	}
	a := taken.Annotations
	if a[resources.AnnotationNginxAuthURL] != resources.CheckURL(stack) || a[resources.AnnotationNginxAuthSignin] != "https://login.example.com/signin" ||
		a[resources.AnnotationNginxAuthResponseHeaders] != "X-Auth-User-Id,X-Auth-Email,X-Auth-Session-Id,X-Auth-Level,X-Auth-Time" || a["team"] != "wiki" {
		t.Errorf("nginx annotations = %v", a)
	}

	// 5. A namespace the stack does not list is refused, and nothing is rendered for it.
	if err := k8s.Create(ctx, appRoute(other, "shop")); err != nil {
		t.Fatal(err)
	}
	foreign := policy(other, "shop", authv1alpha1.ProxyEnvoyGateway, "HTTPRoute", "shop")
	foreign.Spec.AuthStackRef.Namespace = ns
	if err := k8s.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	policyReady(t, r, other, "shop", authv1alpha1.ReasonNamespaceNotAllowed)
	if err := k8s.Get(ctx, key(other, "shop-authstack"), sp); !apierrors.IsNotFound(err) {
		t.Errorf("SecurityPolicy for a refused namespace: %v", err)
	}
}
