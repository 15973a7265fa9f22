package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The edge fields: spec.gateway, spec.ingress's class and annotations, the
// NetworkPolicy peers (gateway_types.go, authstack_types.go).

func init() {
	rejectCases = append(rejectCases, edgeRejectCases...)
}

const (
	msgGatewayParents = "gateway.parentRefs must name at least one Gateway when gateway.enabled is true"
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
	{name: "gateway hostname with a scheme", set: map[string]any{"gateway": gateway(map[string]any{"hostnames": []any{"https://auth.example.com"}})},
		field: "spec.gateway.hostnames[0]", kind: kindPattern},
}

const kindMaxItems = "maxItems"

func init() { kindMessage[kindMaxItems] = "must have at most" }

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
