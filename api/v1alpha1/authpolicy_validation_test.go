package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The AuthPolicy CRD's rules, on the real API server (dry run): each bad policy is
// refused naming its field.

func authPolicy(spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(authv1alpha1.GroupVersion.WithKind("AuthPolicy"))
	u.SetNamespace(testNamespace)
	u.SetName("p")
	return u
}

func policySpec(edit map[string]any) map[string]any {
	s := map[string]any{
		"authStackRef": map[string]any{"name": "auth"},
		"targetRef":    map[string]any{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "shop"},
		"proxy":        "EnvoyGateway",
	}
	for k, v := range edit {
		setPath(s, k, v)
	}
	return s
}

const (
	msgPolicyProxy    = "proxy must be EnvoyGateway, Traefik or ExternalAuthFilter for an HTTPRoute, Traefik or IngressNginx for an Ingress"
	msgPolicyProtocol = "protocol GRPC needs proxy EnvoyGateway or ExternalAuthFilter: Traefik and nginx call the check over HTTP"
	msgPolicyTarget   = "targetRef must be a gateway.networking.k8s.io HTTPRoute or a networking.k8s.io Ingress"
)

func TestAuthPolicyRejects(t *testing.T) {
	ingress := map[string]any{"targetRef": map[string]any{"group": "networking.k8s.io", "kind": "Ingress", "name": "shop"}}
	for _, tc := range []struct {
		name  string
		edit  map[string]any
		field string
		kind  string
		msg   string
	}{
		{"nginx on an HTTPRoute", map[string]any{"proxy": "IngressNginx"}, "spec", kindCEL, msgPolicyProxy},
		{"Envoy Gateway on an Ingress", with(ingress, map[string]any{"proxy": "EnvoyGateway"}), "spec", kindCEL, msgPolicyProxy},
		{"gRPC through Traefik", map[string]any{"proxy": "Traefik", "protocol": "GRPC"}, "spec", kindCEL, msgPolicyProtocol},
		{"Ingress kind in the Gateway API group", map[string]any{"targetRef.kind": "Ingress"}, "spec.targetRef", kindCEL, msgPolicyTarget},
		{"unknown proxy", map[string]any{"proxy": "HAProxy"}, "spec.proxy", kindEnum, ""},
		{"unknown protocol", map[string]any{"protocol": "TCP"}, "spec.protocol", kindEnum, ""},
		{"unknown target kind", map[string]any{"targetRef.kind": "Service"}, "spec.targetRef.kind", kindEnum, ""},
		{"unknown target group", map[string]any{"targetRef.group": "traefik.io"}, "spec.targetRef.group", kindEnum, ""},
		{"target name with capitals", map[string]any{"targetRef.name": "Shop"}, "spec.targetRef.name", kindPattern, ""},
		{"target name empty", map[string]any{"targetRef.name": ""}, "spec.targetRef.name", kindMinLength, ""},
		{"target name too long", map[string]any{"targetRef.name": strings.Repeat("a", 254)}, "spec.targetRef.name", kindMaxLength, ""},
		{"stack name with a dot", map[string]any{"authStackRef.name": "a.b"}, "spec.authStackRef.name", kindPattern, ""},
		{"stack name empty", map[string]any{"authStackRef.name": ""}, "spec.authStackRef.name", kindMinLength, ""},
		{"stack name too long", map[string]any{"authStackRef.name": "a" + strings.Repeat("b", 38)}, "spec.authStackRef.name", kindMaxLength, ""},
		{"stack namespace with capitals", map[string]any{"authStackRef.namespace": "Auth"}, "spec.authStackRef.namespace", kindPattern, ""},
		{"stack namespace too long", map[string]any{"authStackRef.namespace": strings.Repeat("n", 64)}, "spec.authStackRef.namespace", kindMaxLength, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := k8sClient.Create(context.Background(), authPolicy(policySpec(tc.edit)), client.DryRunAll)
			var also []string
			if tc.field != "spec" { // a bad field can fail the rules over spec too
				also = append(also, "spec")
			}
			assertInvalid(t, err, tc.field, tc.kind, tc.msg, also...)
		})
	}
}

func TestAuthPolicyAccepts(t *testing.T) {
	ingress := map[string]any{"targetRef": map[string]any{"group": "networking.k8s.io", "kind": "Ingress", "name": "shop"}}
	for name, edit := range map[string]map[string]any{
		"Envoy Gateway gRPC":           {"protocol": "GRPC"},
		"Envoy Gateway HTTP":           {"protocol": "HTTP"},
		"Traefik on a route":           {"proxy": "Traefik"},
		"ExternalAuth filter gRPC":     {"proxy": "ExternalAuthFilter", "protocol": "GRPC", "authStackRef.namespace": "auth"},
		"ingress-nginx on an Ingress":  with(ingress, map[string]any{"proxy": "IngressNginx"}),
		"Traefik on an Ingress (HTTP)": with(ingress, map[string]any{"proxy": "Traefik", "protocol": "HTTP"}),
	} {
		t.Run(name, func(t *testing.T) {
			if err := k8sClient.Create(context.Background(), authPolicy(policySpec(edit)), client.DryRunAll); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}
