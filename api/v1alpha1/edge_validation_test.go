package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The edge fields: spec.gateway, spec.ingress's class and annotations, the
// NetworkPolicy peers (gateway_types.go, authstack_types.go).

func init() {
	rejectCases = append(rejectCases, edgeRejectCases...)
}

const (
	msgGatewayParents = "gateway.parentRefs must name at least one Gateway when gateway.enabled is true"
	msgSignInURL      = "edgeAuth.signInURL must be an https URL (http only for localhost)"
	msgGatewayPath    = "gateway.path must be /auth: the authserver serves every route under /auth, so another prefix would answer 404"
)

func gateway(fields map[string]any) map[string]any {
	g := map[string]any{"enabled": true, "parentRefs": []any{map[string]any{"name": "public", "namespace": "edge"}}}
	for k, v := range fields {
		g[k] = v
	}
	return g
}

var edgeRejectCases = []rejectCase{
	{name: "gateway enabled without parentRefs", set: map[string]any{"gateway": map[string]any{"enabled": true}},
		field: "spec.gateway", kind: kindCEL, msg: msgGatewayParents},
	{name: "gateway enabled with empty parentRefs", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": []any{}})},
		field: "spec.gateway", kind: kindCEL, msg: msgGatewayParents},
	{name: "gateway path not /auth", set: map[string]any{"gateway": gateway(map[string]any{"path": "/login"})},
		field: "spec.gateway.path", kind: kindCEL, msg: msgGatewayPath},
	{name: "gateway path too long", set: map[string]any{"gateway": gateway(map[string]any{"path": "/" + strings.Repeat("a", 256)})},
		field: "spec.gateway.path", kind: kindMaxLength},
	{name: "gateway parentRef without name", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": []any{map[string]any{"namespace": "edge"}}})},
		field: "spec.gateway.parentRefs[0].name", kind: kindRequired},
	{name: "gateway parentRef name with capitals", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": []any{map[string]any{"name": "Public"}}})},
		field: "spec.gateway.parentRefs[0].name", kind: kindPattern},
	{name: "gateway parentRef namespace with dots", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": []any{map[string]any{"name": "public", "namespace": "a.b"}}})},
		field: "spec.gateway.parentRefs[0].namespace", kind: kindPattern},
	{name: "gateway parentRef sectionName with capitals", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": []any{map[string]any{"name": "public", "sectionName": "HTTPS"}}})},
		field: "spec.gateway.parentRefs[0].sectionName", kind: kindPattern},
	{name: "gateway too many parentRefs", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": repeat(map[string]any{"name": "g"}, 17)})},
		field: "spec.gateway.parentRefs", kind: kindMaxItems},
	{name: "ingress too many annotations", set: map[string]any{"ingress.annotations": manyAnnotations(65)},
		field: "spec.ingress.annotations", kind: kindMaxProperties},
	{name: "networkPolicy ipBlock not a CIDR", set: map[string]any{"networkPolicy.allowedIPBlocks": []any{map[string]any{"cidr": "10.0.0.1"}}},
		field: "spec.networkPolicy.allowedIPBlocks[0]", kind: kindCEL, msg: msgIPBlockCIDR},
	{name: "networkPolicy ipBlock except outside cidr", set: map[string]any{"networkPolicy.allowedIPBlocks": []any{
		map[string]any{"cidr": "10.0.0.0/16", "except": []any{"10.1.0.0/24"}}}},
		field: "spec.networkPolicy.allowedIPBlocks[0]", kind: kindCEL, msg: msgIPBlockExcept},
	{name: "networkPolicy too many ipBlocks", set: map[string]any{"networkPolicy.allowedIPBlocks": repeat(map[string]any{"cidr": "10.0.0.0/8"}, 33)},
		field: "spec.networkPolicy.allowedIPBlocks", kind: kindMaxItems},
	{name: "gateway parentRef name empty", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": []any{map[string]any{"name": ""}}})},
		field: "spec.gateway.parentRefs[0].name", kind: kindMinLength},
	{name: "gateway parentRef name too long", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": []any{map[string]any{"name": strings.Repeat("g", 254)}}})},
		field: "spec.gateway.parentRefs[0].name", kind: kindMaxLength},
	{name: "gateway parentRef namespace too long", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": []any{map[string]any{"name": "g", "namespace": strings.Repeat("n", 64)}}})},
		field: "spec.gateway.parentRefs[0].namespace", kind: kindMaxLength},
	{name: "gateway parentRef sectionName too long", set: map[string]any{"gateway": gateway(map[string]any{"parentRefs": []any{map[string]any{"name": "g", "sectionName": strings.Repeat("s", 254)}}})},
		field: "spec.gateway.parentRefs[0].sectionName", kind: kindMaxLength},
	{name: "gateway hostname too long", set: map[string]any{"gateway": gateway(map[string]any{"hostnames": []any{strings.Repeat("h", 254)}})},
		field: "spec.gateway.hostnames[0]", kind: kindMaxLength},
	{name: "networkPolicy ipBlock cidr too long", set: map[string]any{"networkPolicy.allowedIPBlocks": []any{map[string]any{"cidr": strings.Repeat("1", 65)}}},
		field: "spec.networkPolicy.allowedIPBlocks[0].cidr", kind: kindMaxLength},
	{name: "networkPolicy ipBlock except too long", set: map[string]any{"networkPolicy.allowedIPBlocks": []any{
		map[string]any{"cidr": "10.0.0.0/8", "except": []any{strings.Repeat("1", 65)}}}},
		field: "spec.networkPolicy.allowedIPBlocks[0].except[0]", kind: kindMaxLength},
	// Found when TestEveryRuleIsCovered started walking list elements.
	{name: "passkeys origin too long", set: map[string]any{"authServer.passkeys.origins": []any{"https://" + strings.Repeat("a", 293)}},
		field: "spec.authServer.passkeys.origins[0]", kind: kindMaxLength},
	{name: "authServer trustedProxies entry too long", set: map[string]any{"authServer.trustedProxies": []any{strings.Repeat("1", 65)}},
		field: "spec.authServer.trustedProxies[0]", kind: kindMaxLength},
	{name: "edgeAuth signInURL plain http", set: map[string]any{"edgeAuth.signInURL": "http://login.example.com/"},
		field: "spec.edgeAuth.signInURL", kind: kindCEL, msg: msgSignInURL},
	{name: "edgeAuth signInURL too long", set: map[string]any{"edgeAuth.signInURL": "https://a.example.com/" + strings.Repeat("p", 2048)},
		field: "spec.edgeAuth.signInURL", kind: kindMaxLength},
	{name: "edgeAuth redirectHost with a port", set: map[string]any{"edgeAuth.redirectHosts": []any{"app.example.com:443"}},
		field: "spec.edgeAuth.redirectHosts[0]", kind: kindPattern},
	{name: "edgeAuth redirectHost too long", set: map[string]any{"edgeAuth.redirectHosts": []any{strings.Repeat("h", 254)}},
		field: "spec.edgeAuth.redirectHosts[0]", kind: kindMaxLength},
	{name: "edgeAuth policyNamespace with capitals", set: map[string]any{"edgeAuth.policyNamespaces": []any{"Shop"}},
		field: "spec.edgeAuth.policyNamespaces[0]", kind: kindPattern},
	{name: "edgeAuth policyNamespace too long", set: map[string]any{"edgeAuth.policyNamespaces": []any{strings.Repeat("n", 64)}},
		field: "spec.edgeAuth.policyNamespaces[0]", kind: kindMaxLength},
	{name: "gateway hostname with a scheme", set: map[string]any{"gateway": gateway(map[string]any{"hostnames": []any{"https://auth.example.com"}})},
		field: "spec.gateway.hostnames[0]", kind: kindPattern},
}

const (
	kindMaxItems      = "maxItems"
	kindMaxProperties = "maxProperties"
	msgIPBlockCIDR    = "networkPolicy.allowedIPBlocks cidr must be a CIDR such as 10.0.0.0/16"
	msgIPBlockExcept  = "networkPolicy.allowedIPBlocks except must hold CIDRs inside cidr"
)

func init() {
	kindMessage[kindMaxItems] = "must have at most"
	kindMessage[kindMaxProperties] = "must have at most"
}

func manyAnnotations(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("example.com/a%d", i)] = "v"
	}
	return m
}

func repeat(v any, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestEdgeAccepts dry-run creates the edge fields at their edges: all must pass.
func TestEdgeAccepts(t *testing.T) {
	for name, set := range map[string]map[string]any{
		"gateway off without parentRefs": {"gateway": map[string]any{"enabled": false}},
		"gateway with listener and wildcard host": {"gateway": gateway(map[string]any{
			"parentRefs": []any{map[string]any{"name": "public", "namespace": "edge", "sectionName": "https"}, map[string]any{"name": "internal"}},
			"hostnames":  []any{"auth.example.com", "*.example.org"}})},
		"ipBlocks v4 and v6 with except": {"networkPolicy.allowedIPBlocks": []any{
			map[string]any{"cidr": "10.0.0.0/16", "except": []any{"10.0.3.0/24"}}, map[string]any{"cidr": "2001:db8::/64"}}},
		"ingress of another class with annotations": {"ingress": map[string]any{"enabled": true, "host": "auth.example.com", "className": "traefik",
			"annotations": map[string]any{"traefik.ingress.kubernetes.io/router.tls": "true"}}},
		"edgeAuth full": {"edgeAuth": map[string]any{"signInURL": "https://login.example.com/signin?x=1", "redirectHosts": []any{"*.example.com", "app.example.org"},
			"policyNamespaces": []any{"shop", "blog"}}},
		"gateway beside the ingress": {"gateway": gateway(nil), "ingress": map[string]any{"enabled": true, "host": "auth.example.com"}},
	} {
		t.Run(name, func(t *testing.T) {
			spec := minimalSpec()
			for p, v := range set {
				setPath(spec, p, v)
			}
			if err := k8sClient.Create(context.Background(), authStack("edge", spec), client.DryRunAll); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

// Until this release the CRD defaulted ingress.className to nginx and
// networkPolicy.ingressControllerNamespaceSelector to the ingress-nginx namespace.
// The API server wrote those defaults into every stack it stored, so a stack made
// before the upgrade keeps them (and keeps admitting ingress-nginx) under the new
// CRD, which no longer has them. Simulated on the real API server: the old
// defaults are put into the CRD, a stack is created, the CRD is restored.
func TestUpgradeKeepsTheOldIngressDefaults(t *testing.T) {
	ctx := context.Background()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	key := client.ObjectKey{Name: "authstacks.auth.leanauth.dev"}
	if err := k8sClient.Get(ctx, key, crd); err != nil {
		t.Fatal(err)
	}
	original := crd.DeepCopy()
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	v := versions[0].(map[string]any)
	specProps := []string{"schema", "openAPIV3Schema", "properties", "spec", "properties"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unstructured.SetNestedField(v, "nginx", append(specProps, "ingress", "properties", "className", "default")...))
	must(unstructured.SetNestedField(v, map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "ingress-nginx"}},
		append(specProps, "networkPolicy", "properties", "ingressControllerNamespaceSelector", "default")...))
	must(unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"))
	must(k8sClient.Update(ctx, crd))
	restore := func() {
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(crd.GroupVersionKind())
		must(k8sClient.Get(ctx, key, cur))
		spec, _, _ := unstructured.NestedMap(original.Object, "spec")
		must(unstructured.SetNestedMap(cur.Object, spec, "spec"))
		must(k8sClient.Update(ctx, cur))
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			restore()
		}
	})

	// The API server swaps in a CRD's new schema a moment after the update; defaults
	// also apply on read, so wait until a dry-run create (defaulted as on write)
	// shows the schema in force before writing, and before reading back.
	waitForClass := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			probe := authStack("probe", minimalSpec())
			must(k8sClient.Create(ctx, probe, client.DryRunAll))
			got, _, _ := unstructured.NestedString(probe.Object, "spec", "ingress", "className")
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the CRD's default className is still %q, want %q", got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitForClass("nginx")
	must(k8sClient.Create(ctx, authStack("before-upgrade", minimalSpec())))
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, authStack("before-upgrade", nil)) })
	restore()
	restored = true
	waitForClass("")

	// Under the new CRD (and after an update through it) the stored values stay.
	got := &authv1alpha1.AuthStack{}
	must(k8sClient.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: "before-upgrade"}, got))
	got.Spec.AuthServer.LogLevel = "debug"
	must(k8sClient.Update(ctx, got))
	must(k8sClient.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: "before-upgrade"}, got))
	if got.Spec.Ingress.ClassName != "nginx" {
		t.Errorf("ingress.className after the upgrade = %q, want the stored nginx", got.Spec.Ingress.ClassName)
	}
	if s := got.Spec.NetworkPolicy.IngressControllerNamespaceSelector; s == nil || s.MatchLabels["kubernetes.io/metadata.name"] != "ingress-nginx" {
		t.Errorf("ingressControllerNamespaceSelector after the upgrade = %v, want the stored ingress-nginx", s)
	}
}
