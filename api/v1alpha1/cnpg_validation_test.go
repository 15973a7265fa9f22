package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// spec.database.cloudNativePG, spec.paused and spec.updatePolicy (cnpg_types.go,
// maintenance_types.go).

func init() {
	rejectCases = append(rejectCases, cnpgRejectCases...)
}

const msgCNPGPooler = "database.cloudNativePG.pooler needs pooler.enabled false: the authserver connects to the CloudNativePG Pooler instead of its own pgbouncer"

// cnpgDatabase is a database section naming only a CloudNativePG Cluster, plus fields.
func cnpgDatabase(fields map[string]any) map[string]any {
	c := map[string]any{"cluster": "pg"}
	for k, v := range fields {
		c[k] = v
	}
	return map[string]any{"cloudNativePG": c}
}

var cnpgRejectCases = []rejectCase{
	{name: "database with both urlSecretRef and cloudNativePG", set: map[string]any{"database.cloudNativePG": map[string]any{"cluster": "pg"}},
		field: "spec.database", kind: kindCEL, msg: msgDatabaseURL},
	{name: "database with managed and cloudNativePG", set: map[string]any{"database": map[string]any{"managed": map[string]any{}, "cloudNativePG": map[string]any{"cluster": "pg"}}},
		field: "spec.database", kind: kindCEL, msg: msgDatabaseURL},
	{name: "cloudNativePG without cluster", set: map[string]any{"database": map[string]any{"cloudNativePG": map[string]any{}}},
		field: "spec.database.cloudNativePG.cluster", kind: kindRequired},
	{name: "cloudNativePG cluster with capitals", set: map[string]any{"database": cnpgDatabase(map[string]any{"cluster": "PG"})},
		field: "spec.database.cloudNativePG.cluster", kind: kindPattern},
	{name: "cloudNativePG cluster empty", set: map[string]any{"database": cnpgDatabase(map[string]any{"cluster": ""})},
		field: "spec.database.cloudNativePG.cluster", kind: kindMinLength},
	{name: "cloudNativePG cluster too long", set: map[string]any{"database": cnpgDatabase(map[string]any{"cluster": strings.Repeat("p", 61)})},
		field: "spec.database.cloudNativePG.cluster", kind: kindMaxLength},
	{name: "cloudNativePG pooler with a dot", set: map[string]any{"database": cnpgDatabase(map[string]any{"pooler": "pg.rw"}), "pooler.enabled": false},
		field: "spec.database.cloudNativePG.pooler", kind: kindPattern},
	{name: "cloudNativePG pooler empty", set: map[string]any{"database": cnpgDatabase(map[string]any{"pooler": ""}), "pooler.enabled": false},
		field: "spec.database.cloudNativePG.pooler", kind: kindMinLength},
	{name: "cloudNativePG pooler too long", set: map[string]any{"database": cnpgDatabase(map[string]any{"pooler": strings.Repeat("p", 64)}), "pooler.enabled": false},
		field: "spec.database.cloudNativePG.pooler", kind: kindMaxLength},
	{name: "cloudNativePG pooler with the operator's pgbouncer on", set: map[string]any{"database": cnpgDatabase(map[string]any{"pooler": "pg-pooler-rw"})},
		field: "spec", kind: kindCEL, msg: msgCNPGPooler},
	{name: "updatePolicy operatorDefaults unknown", set: map[string]any{"updatePolicy.operatorDefaults": "Never"},
		field: "spec.updatePolicy.operatorDefaults", kind: kindEnum, msg: `"Follow", "Pinned"`},
}

// TestCloudNativePGAccepted: the three shapes a CloudNativePG stack takes are valid, and
// the defaults of the new fields are what the operator expects.
func TestCloudNativePGAccepted(t *testing.T) {
	for name, edit := range map[string]func(spec map[string]any){
		"cluster only":           func(s map[string]any) { s["database"] = cnpgDatabase(nil) },
		"cluster with pgbouncer": func(s map[string]any) { s["database"] = cnpgDatabase(nil); setPath(s, "pooler.enabled", true) },
		"cluster and its Pooler": func(s map[string]any) {
			s["database"] = cnpgDatabase(map[string]any{"pooler": "pg-pooler-rw"})
			setPath(s, "pooler.enabled", false)
		},
		"paused and pinned": func(s map[string]any) { s["paused"] = true; setPath(s, "updatePolicy.operatorDefaults", "Pinned") },
	} {
		t.Run(name, func(t *testing.T) {
			spec := minimalSpec()
			edit(spec)
			u := authStack("cnpg-ok", spec)
			if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if got, _, _ := unstructured.NestedString(u.Object, "spec", "updatePolicy", "operatorDefaults"); got == "" {
				t.Errorf("updatePolicy.operatorDefaults not defaulted: %v", u.Object["spec"])
			}
		})
	}
}
