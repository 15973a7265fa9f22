package doccheck

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestRepositoryPointers: every relative link of the repository's Markdown
// and every .md file a Markdown file, a Go comment or a shell comment names
// exists.
func TestRepositoryPointers(t *testing.T) {
	broken, err := Check("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range broken {
		t.Error(b)
	}
}

// TestCheckFindsBrokenPointers: the checker sees each kind of pointer, and
// only broken ones.
func TestCheckFindsBrokenPointers(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"README.md":      "See [the guide](docs/guide.md#start), [gone](docs/gone.md), [web](https://example.com/x.md) and `docs/other.md`.\n```sh\ncat NOT-CHECKED.md\n```\n[ref]: docs/missing-ref.md\n",
		"docs/guide.md":  "Back to [the top](../README.md), [a sibling](other.md), [an anchor](#start).\n",
		"docs/other.md":  "Nothing.\n",
		"pkg/code.go":    "package pkg\n\n// See KEYS.md and docs/guide.md.\nvar x = \"not a comment: NOPE.md\"\n",
		"hack/script.sh": "#!/bin/sh\n# see docs/missing-script.md\necho MISSING.md # and README.md\n",
		"bin/skipped.md": "[gone](nowhere.md)\n",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Broken{
		{"README.md", 1, "docs/gone.md"},
		{"README.md", 5, "docs/missing-ref.md"},
		{"hack/script.sh", 2, "docs/missing-script.md"},
		{"pkg/code.go", 3, "KEYS.md"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}
