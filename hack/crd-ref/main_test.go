package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReferenceUpToDate fails when docs/reference.md differs from what the
// generator prints for the committed CRDs: regenerate with
// `go run ./hack/crd-ref > docs/reference.md`.
func TestReferenceUpToDate(t *testing.T) {
	want, err := RenderDir(filepath.Join("..", "..", "config", "crd", "bases"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", "docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/reference.md is stale: run `go run ./hack/crd-ref > docs/reference.md`")
	}
}

func TestRenderFieldRow(t *testing.T) {
	dir := t.TempDir()
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, listKind: WidgetList, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: integer
                default: 3
                minimum: 1
                description: Size of the | widget.
              color:
                type: string
                enum: [red, blue]
`
	if err := os.WriteFile(filepath.Join(dir, "w.yaml"), []byte(crd), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := RenderDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Widget reference",
		"| `.spec.size` | integer | `3` | required; minimum 1 | Size of the \\| widget. |",
		"| `.spec.color` | string |  | one of \"red\", \"blue\" |  |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := RenderDir(t.TempDir()); err == nil {
		t.Error("empty directory: want an error")
	}
	if err := os.WriteFile(filepath.Join(dir, "w.yaml"), []byte("spec: [oops"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RenderDir(dir); err == nil {
		t.Error("malformed YAML: want an error")
	}
}
