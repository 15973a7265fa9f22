package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// spec.database.managed.passwordRotation rules (dbrotation_types.go). The creation
// case joins rejectCases; the update cases run in TestDatabaseRotationTransitions, and
// TestEveryRuleIsCovered counts both.

const (
	msgDBRotRemoved = "database.managed.passwordRotation cannot be removed: the pods may use the second role it created (dbrotation_types.go)"
	msgDBRotLowered = "database.managed.passwordRotation.generation can only be raised"
)

func managedWithRotation(rotation map[string]any) map[string]any {
	m := map[string]any{}
	if rotation != nil {
		m["passwordRotation"] = rotation
	}
	return map[string]any{"managed": m}
}

func init() {
	rejectCases = append(rejectCases,
		rejectCase{name: "database rotation generation 0", set: map[string]any{"database": managedWithRotation(map[string]any{"generation": int64(0)})},
			field: "spec.database.managed.passwordRotation.generation", kind: kindMinimum},
		rejectCase{name: "database rotation without generation", set: map[string]any{"database": managedWithRotation(map[string]any{})},
			field: "spec.database.managed.passwordRotation.generation", kind: kindRequired},
	)
}

func TestDatabaseRotationAccepts(t *testing.T) {
	spec := minimalSpec()
	spec["database"] = managedWithRotation(map[string]any{"generation": int64(7)})
	if err := k8sClient.Create(context.Background(), authStack("good", spec), client.DryRunAll); err != nil {
		t.Fatalf("rejected: %v", err)
	}
}

// dbRotationTransitions: create with create (nil: no passwordRotation), update to update.
var dbRotationTransitions = []struct {
	name           string
	create, update map[string]any
	field, msg     string // field "": accepted
}{
	{name: "add the rotation", create: nil, update: map[string]any{"generation": int64(1)}},
	{name: "raise by one", create: map[string]any{"generation": int64(1)}, update: map[string]any{"generation": int64(2)}},
	{name: "raise by three", create: map[string]any{"generation": int64(1)}, update: map[string]any{"generation": int64(4)}},
	{name: "keep", create: map[string]any{"generation": int64(3)}, update: map[string]any{"generation": int64(3)}},
	{name: "lower", create: map[string]any{"generation": int64(3)}, update: map[string]any{"generation": int64(2)},
		field: "spec.database.managed", msg: msgDBRotLowered},
	{name: "remove", create: map[string]any{"generation": int64(3)}, update: nil,
		field: "spec.database.managed", msg: msgDBRotRemoved},
}

// TestDatabaseRotationTransitions: the generation only goes up, and the rotation
// cannot be dropped (the pods may log in as the second role).
func TestDatabaseRotationTransitions(t *testing.T) {
	for i, tc := range dbRotationTransitions {
		t.Run(tc.name, func(t *testing.T) {
			spec := minimalSpec()
			spec["database"] = managedWithRotation(tc.create)
			checkTransition(t, fmt.Sprintf("db-rotation-%d", i), spec, func(spec map[string]any) {
				spec["database"] = managedWithRotation(tc.update)
			}, tc.field, tc.msg)
		})
	}
}

// TestDocsDatabaseRotationExample: the YAML example of docs/operations.md, "Rotate the
// managed database password", is accepted by the API server as written.
func TestDocsDatabaseRotationExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "### Rotate the managed database password")
	if start < 0 {
		t.Fatal(`docs/operations.md has no "### Rotate the managed database password"`)
	}
	blocks := strings.Split(doc[start:], "```yaml\n")
	if len(blocks) < 2 {
		t.Fatal("no YAML example")
	}
	var ex struct {
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(blocks[1][:strings.Index(blocks[1], "```")]), &ex); err != nil {
		t.Fatal(err)
	}
	spec := minimalSpec()
	for k, v := range ex.Spec {
		spec[k] = v
	}
	if err := k8sClient.Create(context.Background(), authStack("doc-db-rotation", spec), client.DryRunAll); err != nil {
		t.Errorf("the example is rejected: %v", err)
	}
}
