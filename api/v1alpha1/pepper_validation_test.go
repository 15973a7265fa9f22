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

// spec.pepperRotation rules (pepper_types.go). The creation cases join rejectCases
// (TestRejects runs them); the update cases run in TestPepperRotationTransitions, and
// TestEveryRuleIsCovered counts both.

const (
	msgRotRetireAbove = "pepperRotation.retireBelow cannot exceed pepperRotation.version: the current pepper is never retired"
	msgRotPepperRange = "pepperRotation.peppers: each version must be between 2 and pepperRotation.version"
	msgRotVersion     = "pepperRotation.version can only be raised, by one at a time: lowering it would make the current pepper an unknown one"
	msgRotEntries     = "pepperRotation.peppers entries cannot be changed or removed: hashes made with them would no longer verify (retire them with retireBelow)"
	msgRotForce       = "pepperRotation.force acknowledges one retirement: set it to false before raising retireBelow again"
	msgRotRemoved     = "spec.pepperRotation cannot be removed: that would make version 1 the current pepper again"
	msgRotAdded       = "spec.pepperRotation added to an existing stack must start at version 1 or 2"
	msgRotPeppers     = "spec.pepperRotation.peppers: with spec.pepper, name one pepper per version from 2 to pepperRotation.version; without it (generated peppers) leave peppers empty"
)

func versioned(v int64, name, key string) map[string]any {
	return map[string]any{"version": v, "secretRef": map[string]any{"name": name, "key": key}}
}

func init() {
	r := "pepperRotation."
	f := "spec.pepperRotation"
	rejectCases = append(rejectCases,
		rejectCase{name: "rotation version 0", set: map[string]any{r + "version": int64(0)}, field: f + ".version", kind: kindMinimum},
		rejectCase{name: "rotation version 101", set: map[string]any{r + "version": int64(101)}, field: f + ".version", kind: kindMaximum},
		rejectCase{name: "rotation without version", set: map[string]any{r + "retireBelow": int64(1)}, field: f + ".version", kind: kindRequired},
		rejectCase{name: "rotation retireBelow negative", set: map[string]any{r + "version": int64(2), r + "retireBelow": int64(-1)}, field: f + ".retireBelow", kind: kindMinimum},
		rejectCase{name: "rotation retires the current pepper", set: map[string]any{r + "version": int64(2), r + "retireBelow": int64(3)}, field: f, kind: kindCEL, msg: msgRotRetireAbove},
		rejectCase{name: "rotation pepper above the version", set: map[string]any{"pepper": pepperRef("p", "v1"), r + "version": int64(2),
			r + "peppers": []any{versioned(2, "p", "v2"), versioned(3, "p", "v3")}}, field: f, kind: kindCEL, msg: msgRotPepperRange, also: []string{"spec"}},
		rejectCase{name: "rotation pepper version 1", set: map[string]any{"pepper": pepperRef("p", "v1"), r + "version": int64(2),
			r + "peppers": []any{versioned(1, "p", "v1")}}, field: f + ".peppers[0].version", kind: kindMinimum, also: []string{"spec.pepperRotation", "spec"}},
		rejectCase{name: "rotation pepper version 101", set: map[string]any{"pepper": pepperRef("p", "v1"), r + "version": int64(2),
			r + "peppers": []any{versioned(101, "p", "v1")}}, field: f + ".peppers[0].version", kind: kindMaximum, also: []string{"spec.pepperRotation", "spec"}},
		rejectCase{name: "rotation of a brought pepper without the new one", set: map[string]any{"pepper": pepperRef("p", "v1"), r + "version": int64(2)},
			field: "spec", kind: kindCEL, msg: msgRotPeppers},
		rejectCase{name: "rotation of a generated pepper naming one", set: map[string]any{r + "version": int64(2), r + "peppers": []any{versioned(2, "p", "v2")}},
			field: "spec", kind: kindCEL, msg: msgRotPeppers},
	)
}

func TestPepperRotationAccepts(t *testing.T) {
	for name, set := range map[string]map[string]any{
		"generated, version 1":           {"pepperRotation.version": int64(1)},
		"generated, version 3, retire 3": {"pepperRotation.version": int64(3), "pepperRotation.retireBelow": int64(3), "pepperRotation.force": true},
		"brought, version 1":             {"pepper": pepperRef("p", "v1"), "pepperRotation.version": int64(1)},
		"brought, version 3": {"pepper": pepperRef("p", "v1"), "pepperRotation.version": int64(3),
			"pepperRotation.peppers": []any{versioned(3, "p", "v3"), versioned(2, "other", "v2")}},
	} {
		t.Run(name, func(t *testing.T) {
			spec := minimalSpec()
			for p, v := range set {
				setPath(spec, p, v)
			}
			if err := k8sClient.Create(context.Background(), authStack("good", spec), client.DryRunAll); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

// pepperTransition creates a stack with spec.pepperRotation create (nil: none) and
// spec.pepper when brought, then replaces spec.pepperRotation with update (nil: removed).
type pepperTransition struct {
	name           string
	brought        bool
	create, update map[string]any
	field, msg     string // field "": accepted
}

func rot(version, retireBelow int64, force bool, peppers ...any) map[string]any {
	m := map[string]any{"version": version}
	if retireBelow > 0 {
		m["retireBelow"] = retireBelow
	}
	if force {
		m["force"] = true
	}
	if len(peppers) > 0 {
		m["peppers"] = peppers
	}
	return m
}

var pepperTransitions = []pepperTransition{
	{name: "rotate a generated pepper", create: rot(1, 0, false), update: rot(2, 0, false)},
	{name: "add the rotation at version 2", create: nil, update: rot(2, 0, false)},
	{name: "add the rotation at version 3", create: nil, update: rot(3, 0, false), field: "spec", msg: msgRotAdded},
	{name: "skip a version", create: rot(1, 0, false), update: rot(3, 0, false), field: "spec.pepperRotation", msg: msgRotVersion},
	{name: "lower the version", create: rot(2, 0, false), update: rot(1, 0, false), field: "spec.pepperRotation", msg: msgRotVersion},
	{name: "remove the rotation", create: rot(2, 0, false), update: nil, field: "spec", msg: msgRotRemoved},
	{name: "retire, then force", create: rot(2, 2, false), update: rot(2, 2, true)},
	{name: "retire and force at once", create: rot(2, 0, false), update: rot(2, 2, true)},
	{name: "force kept across another retirement", create: rot(2, 2, true), update: rot(3, 3, true), field: "spec.pepperRotation", msg: msgRotForce},
	{name: "force cleared, then retire again", create: rot(2, 2, true), update: rot(3, 3, false)},
	{name: "un-retire (lower retireBelow)", create: rot(2, 2, true), update: rot(2, 0, false)},
	{name: "rotate a brought pepper", brought: true, create: rot(1, 0, false), update: rot(2, 0, false, versioned(2, "p", "v2"))},
	{name: "rotate a brought pepper twice", brought: true, create: rot(2, 0, false, versioned(2, "p", "v2")),
		update: rot(3, 2, false, versioned(3, "p", "v3"), versioned(2, "p", "v2"))},
	{name: "change a brought pepper", brought: true, create: rot(2, 0, false, versioned(2, "p", "v2")),
		update: rot(2, 0, false, versioned(2, "p", "other")), field: "spec.pepperRotation", msg: msgRotEntries},
	{name: "replace a brought pepper by the next", brought: true, create: rot(2, 0, false, versioned(2, "p", "v2")),
		update: rot(3, 0, false, versioned(3, "p", "v3")), field: "spec", msg: msgRotPeppers},
}

// TestPepperRotationTransitions: the current pepper never changes silently.
func TestPepperRotationTransitions(t *testing.T) {
	for i, tc := range pepperTransitions {
		t.Run(tc.name, func(t *testing.T) {
			spec := minimalSpec()
			if tc.brought {
				spec["pepper"] = pepperRef("p", "v1")
			}
			if tc.create != nil {
				spec["pepperRotation"] = tc.create
			}
			checkTransition(t, fmt.Sprintf("pepper-rotation-%d", i), spec, func(spec map[string]any) {
				delete(spec, "pepperRotation")
				if tc.update != nil {
					spec["pepperRotation"] = tc.update
				}
			}, tc.field, tc.msg)
		})
	}
}

// TestDocsRotationExamples: every YAML example of docs/operations.md, "Rotate the
// pepper", is accepted by the API server (on the minimal stack), so the steps the doc
// gives work as written.
func TestDocsRotationExamples(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "### Rotate the pepper")
	if start < 0 {
		t.Fatal(`docs/operations.md has no "### Rotate the pepper"`)
	}
	section := doc[start:]
	if end := strings.Index(section[4:], "\n## "); end >= 0 {
		section = section[:end+4]
	}
	blocks := strings.Split(section, "```yaml\n")[1:]
	if len(blocks) < 3 {
		t.Fatalf("%d YAML examples, want the generated, the brought and the retirement one", len(blocks))
	}
	for i, b := range blocks {
		var ex struct {
			Spec map[string]any `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(b[:strings.Index(b, "```")]), &ex); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		spec := minimalSpec()
		for k, v := range ex.Spec {
			spec[k] = v
		}
		if err := k8sClient.Create(context.Background(), authStack("doc-example", spec), client.DryRunAll); err != nil {
			t.Errorf("example %d rejected: %v", i+1, err)
		}
	}
}
