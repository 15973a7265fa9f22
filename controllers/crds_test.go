package controllers

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// moduleDir is the module cache folder of a module go.mod pins: the tests install
// upstream CRDs from there, at the version the operator builds against, instead of
// copies made by hand.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-json", module).Output()
	if err != nil {
		t.Fatalf("go list -m -json %s (is it pinned in go.mod? run go mod download): %v", module, err)
	}
	var m struct{ Dir, Version string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go list -m -json %s: no module folder (run go mod download): %v %s", module, err, out)
	}
	return m.Dir
}

var gatewayCRDs sync.Once

// installGatewayAPICRDs installs the Gateway API CRDs of the experimental channel
// (a superset of the standard one: it adds HTTPRoute's ExternalAuth filter) into the
// shared envtest, once. A test that needs them absent must run before any test
// calling this (non-parallel tests run first).
func installGatewayAPICRDs(t *testing.T) {
	t.Helper()
	var err error
	gatewayCRDs.Do(func() {
		dir := filepath.Join(moduleDir(t, "sigs.k8s.io/gateway-api"), "config", "crd", "experimental")
		_, err = envtest.InstallCRDs(restConfig, envtest.CRDInstallOptions{Paths: []string{dir}, ErrorIfPathMissing: true})
	})
	if err != nil {
		t.Fatalf("installing the Gateway API CRDs: %v", err)
	}
}

var proxyCRDs sync.Once

// traefikVersion is the Traefik whose Middleware CRD the tests install: the one
// hack/traefik.sh builds for the proxy tests. Traefik is not a Go dependency of
// the operator (requiring its module would raise shared dependencies through
// MVS), so its module is fetched by version into the module cache.
const traefikVersion = "v3.6.12"

// installProxyCRDs installs, once, the Gateway API CRDs, Envoy Gateway's
// SecurityPolicy CRD (from the github.com/envoyproxy/gateway module go.mod pins)
// and Traefik's CRDs (from the traefik module at traefikVersion).
func installProxyCRDs(t *testing.T) {
	t.Helper()
	installGatewayAPICRDs(t)
	var err error
	proxyCRDs.Do(func() {
		eg := filepath.Join(moduleDir(t, "github.com/envoyproxy/gateway"), "charts", "gateway-helm", "charts", "crds", "crds", "generated", "gateway.envoyproxy.io_securitypolicies.yaml")
		out, derr := exec.Command("go", "mod", "download", "-json", "github.com/traefik/traefik/v3@"+traefikVersion).Output()
		var m struct{ Dir string }
		if derr != nil || json.Unmarshal(out, &m) != nil || m.Dir == "" {
			t.Fatalf("go mod download github.com/traefik/traefik/v3@%s: %v %s", traefikVersion, derr, out)
		}
		traefik := filepath.Join(m.Dir, "integration", "fixtures", "k8s", "01-traefik-crd.yml")
		_, err = envtest.InstallCRDs(restConfig, envtest.CRDInstallOptions{Paths: []string{eg, traefik}, ErrorIfPathMissing: true})
	})
	if err != nil {
		t.Fatalf("installing the proxy CRDs: %v", err)
	}
}
