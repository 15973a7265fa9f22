package argon2

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// TestUpstreamIsGoMod: the x/crypto that go.mod requires is the one the fork
// was taken from, so a bump cannot leave the fork behind unnoticed.
func TestUpstreamIsGoMod(t *testing.T) {
	const path = "../../go.mod"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.ParseLax(path, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var required string
	for _, r := range f.Require {
		if r.Mod.Path == "golang.org/x/crypto" {
			required = r.Mod.Version
		}
	}
	if required != Upstream {
		t.Fatalf("go.mod requires golang.org/x/crypto %q but internal/argon2 was taken from %s: "+
			"compare x/crypto/argon2 and x/crypto/blake2b at %s with internal/argon2, port the changes, then set Upstream (upstream.go)",
			required, Upstream, required)
	}
}

// TestVerbatimFilesMatchUpstream: the files the fork did not change are still
// byte for byte x/crypto's (the source go.mod resolves, from the module cache).
func TestVerbatimFilesMatchUpstream(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/crypto").Output()
	if err != nil {
		t.Fatalf("locating golang.org/x/crypto: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "argon2")
	for _, name := range append(verbatim, "../LICENSE") {
		ours, err := os.ReadFile(filepath.Base(name))
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Errorf("%s differs from x/crypto's %s", filepath.Base(name), filepath.Join(dir, name))
		}
	}
}
