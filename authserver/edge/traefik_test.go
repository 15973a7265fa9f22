package edge_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/edgecases"
	"github.com/leanauth/authstack/internal/servers"
)

// nonLoopbackIPv4 is an address of this machine an EndpointSlice accepts
// (the API server refuses loopback and link-local endpoints).
func nonLoopbackIPv4(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal("no non-loopback IPv4 address on this machine: the app behind Traefik needs one for its EndpointSlice")
	return ""
}

// traefikObjects: a Gateway of Traefik's class with a listener on the entry
// point's port, an HTTPRoute to the app (a Service without selector and its
// EndpointSlice) protected by a ForwardAuth Middleware to /auth/check, which
// copies every X-Auth-* header of the check's answer after removing the
// client's.
const traefikObjects = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: traefik}
spec: {controllerName: traefik.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  gatewayClassName: traefik
  listeners: [{name: web, protocol: HTTP, port: %[1]d}]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: authstack, namespace: default}
spec:
  forwardAuth:
    address: %[2]s/auth/check
    authResponseHeadersRegex: ^X-Auth-
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: %[4]d}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app-1, namespace: default, labels: {kubernetes.io/service-name: app}}
addressType: IPv4
endpoints: [{addresses: ["%[3]s"], conditions: {ready: true}}]
ports: [{name: http, port: %[4]d, protocol: TCP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: default}
spec:
  parentRefs: [{name: edge}]
  hostnames: [shop.edge.test]
  rules:
  - filters: [{type: ExtensionRef, extensionRef: {group: traefik.io, kind: Middleware, name: authstack}}]
    backendRefs: [{name: app, port: 80}]
`

// Traefik v3 (built from the module proxy by hack/traefik.sh) with its
// Kubernetes Gateway API provider watching a real kube-apiserver: an
// HTTPRoute to the app, protected by ForwardAuth to /auth/check.
func TestTraefikGatewayForwardAuth(t *testing.T) {
	t.Parallel()
	crds, err := servers.TraefikCRDs()
	if err != nil {
		t.Fatalf("the Gateway API and Traefik CRDs (from their modules, %s): %v", servers.TraefikScript, err)
	}
	env := &envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{Paths: crds, ErrorIfPathMissing: true}}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest (KUBEBUILDER_ASSETS=%q; hack/control-plane.sh installs it): %v", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "traefik", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	k8s, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	e := authtest.Start(t, authtest.Options{NoPooler: true, Vars: map[string]string{
		"AUTH_SIGNIN_URL": "https://login.edge.test/signin", "AUTH_REDIRECT_HOSTS": "shop.edge.test",
	}})
	ip := nonLoopbackIPv4(t)
	app := startApp(t, ip)
	_, appPort, _ := net.SplitHostPort(app.addr)

	tr, err := servers.StartTraefik([]string{"KUBECONFIG=" + kubeconfig},
		"--providers.kubernetesGateway=true", "--providers.kubernetesCRD=true")
	if err != nil {
		t.Fatalf("starting Traefik (%s builds it): %v", servers.TraefikScript, err)
	}
	t.Cleanup(tr.Close)

	var port int
	fmt.Sscan(appPort, &port)
	ctx := context.Background()
	for _, doc := range strings.Split(fmt.Sprintf(traefikObjects, tr.Port(), e.BaseURL, ip, port), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if err := k8s.Create(ctx, &u); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}

	// Traefik has the route once the host no longer gets its 404.
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "http://"+tr.Addr()+"/", nil)
		req.Host = "shop.edge.test"
		resp, err := noRedirects.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 404 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Traefik did not route shop.edge.test within 60s (%v); log:\n%s", err, tr.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	base := "http://" + tr.Addr()
	proxyCases(t, e, app, edgecases.Proxy{Name: "traefik", BrowserURL: base, APIURL: base, Host: "shop.edge.test",
		SigninHost: "login.edge.test", Cookie: "session", JSONErrors: true})
}
