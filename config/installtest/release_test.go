package installtest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestInstallYAMLPinnedToVERSION: both installers run the operator image of the release
// in the VERSION file and pin the authserver image it defaults to, to the same version;
// nothing in them floats (`:latest`). `make test` also checks that the committed files
// are byte for byte what `make release` renders for that version.
func TestInstallYAMLPinnedToVERSION(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(raw))
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(version) {
		t.Fatalf("VERSION %q is not x.y.z", version)
	}
	for _, path := range []string{installPath, namespacedInstallPath} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			content, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(content), ":latest") {
				t.Errorf("%s names an image :latest", path)
			}
			d := convert[appsv1.Deployment](t, find(readObjects(t, path), "Deployment", operatorDeploy))
			c := d.Spec.Template.Spec.Containers[0]
			if want := "ghcr.io/leanauth/authstack-operator:v" + version; c.Image != want {
				t.Errorf("operator image %q, want %q", c.Image, want)
			}
			if want := "--authserver-image=ghcr.io/leanauth/authserver:v" + version; !slices.Contains(c.Args, want) {
				t.Errorf("operator args %q lack %s", c.Args, want)
			}
		})
	}
}
