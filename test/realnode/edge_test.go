//go:build realnode

package realnode

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/controllers/resources"
	"github.com/leanauth/authstack/internal/edgecases"
	"github.com/leanauth/authstack/internal/servers"
)

// EdgeAppImage is test/realnode/edgeapp: the protected app and the client.
const EdgeAppImage = "localhost/authstack/edgeapp:e2e"

const (
	shopHost   = "shop.edge.test" // the protected app, through either proxy
	openHost   = "open.edge.test" // the same app through Traefik without the check (the latency baseline)
	authHost   = "auth.edge.test" // the authserver, through Traefik (spec.gateway)
	signinHost = "login.edge.test"
	appPort    = 8080
	// Traefik's entry point; the Gateway's listener names the same port.
	traefikPort, traefikPingPort = 8000, 8082
	// The two nginx servers: browsers (auth-signin set) and APIs (auth-url only).
	nginxBrowserPort, nginxAPIPort = 8080, 8081
	// nginxOpen is a path nginx serves without the check (the latency baseline).
	nginxOpen = "/open"
)

// TestRealNodeEdgeProxies: the proxies of docs/edge-auth.md as pods in front of
// an app pod, protected the way the product says, by AuthPolicies the operator
// renders, on an AuthStack the operator runs. Traefik v3 watches the cluster with
// its Gateway API provider (a Gateway, an HTTPRoute to the app with the
// operator's forwardAuth Middleware, and the operator's own HTTPRoute to the
// authserver, spec.gateway); Debian's nginx runs the configuration ingress-nginx
// renders for the annotations the operator set on an Ingress. A client pod walks
// edgecases.Run through each proxy's Service. The stack's NetworkPolicy names the
// two proxies' pods (gateway and ingress controller selectors): they reach the
// authserver (every case passes through the check), a pod it does not name
// cannot. Last, a short load from the client pod measures the latency each proxy
// adds with the check (logged, docs/benchmarks.md; nothing is asserted on it).
func TestRealNodeEdgeProxies(t *testing.T) {
	images, err := LocalImages()
	if err != nil {
		t.Fatal(err)
	}
	if err := BuildGoImage(EdgeAppImage, "./test/realnode/edgeapp", []string{"/edgeapp"}); err != nil {
		t.Fatal(err)
	}
	installTraefikCRDs(t)
	ns := NewNamespace(t, "edge")
	StartMailpit(t, ns, images["mailpit"])
	StartOperator(t, ns, Images{AuthServer: images["authserver"], PgBouncer: images["pgbouncer"], Redis: images["redis"]})

	labels := func(app string) map[string]string { return map[string]string{"app": app} }
	selector := func(k, v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	stack := ManagedStack(ns, "edge", images)
	stack.Spec.EdgeAuth = authv1alpha1.EdgeAuthSpec{SignInURL: "https://" + signinHost + "/signin",
		RedirectHosts: []string{shopHost}, PolicyNamespaces: []string{ns}}
	stack.Spec.Gateway = authv1alpha1.GatewaySpec{Enabled: true, Hostnames: []string{authHost},
		ParentRefs: []authv1alpha1.GatewayParentRef{{Name: "edge"}}}
	np := &stack.Spec.NetworkPolicy
	np.GatewayNamespaceSelector, np.GatewayPodSelector = selector("kubernetes.io/metadata.name", ns), selector("app", "traefik")
	np.IngressControllerNamespaceSelector, np.IngressControllerPodSelector = selector("kubernetes.io/metadata.name", ns), selector("app", "nginx")
	if err := env.c.Create(Ctx(t), stack); err != nil {
		t.Fatalf("creating the AuthStack: %v", err)
	}

	// The app, and the client that sends every request from inside the pod network.
	create(t, ns, edgeAppPod("shop", "app", labels("shop")), service("shop", labels("shop"), 80, appPort))
	create(t, ns, edgeAppPod("client", "client", labels("client")))

	// Traefik, the Gateway, the app's routes and the policy.
	startTraefik(t, ns, images["traefik"])
	policy := func(name, kind string, proxy authv1alpha1.AuthProxy) *authv1alpha1.AuthPolicy {
		group := gatewayGroup
		if kind == "Ingress" {
			group = "networking.k8s.io"
		}
		return &authv1alpha1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: authv1alpha1.AuthPolicySpec{
			AuthStackRef: authv1alpha1.AuthStackReference{Name: stack.Name},
			TargetRef:    authv1alpha1.PolicyTargetRef{Group: group, Kind: kind, Name: name},
			Proxy:        proxy,
		}}
	}
	traefikPolicy := policy("shop", "HTTPRoute", authv1alpha1.ProxyTraefik)
	applyYAML(t, fmt.Sprintf(gatewayObjects, ns, traefikPort, shopHost, resources.AuthPolicyObjectName(traefikPolicy), openHost))

	// nginx's policy: an Ingress (no ingress-nginx runs: nginx below stands for it).
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-nginx"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"), Rules: []networkingv1.IngressRule{{Host: shopHost,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}}}}},
	}
	nginxPolicy := policy(ing.Name, "Ingress", authv1alpha1.ProxyIngressNginx)
	create(t, ns, ing, traefikPolicy, nginxPolicy)
	waitPolicyReady(t, traefikPolicy)
	waitPolicyReady(t, nginxPolicy)
	if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(ing), ing); err != nil {
		t.Fatal(err)
	}
	startNginx(t, ns, images["nginx"], ing.Annotations)

	WaitStackReady(t, ns, stack.Name, 10*time.Minute)
	c := &edgeClient{pod: WaitPodReady(t, ns, "client", 3*time.Minute)}
	app := WaitPodReady(t, ns, "shop", 3*time.Minute)
	traefik := fmt.Sprintf("http://traefik.%s.svc.cluster.local", ns)
	// Traefik routes to the authserver (the operator's HTTPRoute) and to the app
	// once it answers them with something else than its 404 (no route) or a 5xx
	// (a route whose backend it has no ready endpoint of yet: "no available server").
	for _, host := range []string{authHost, shopHost, openHost} {
		Eventually(t, 2*time.Minute, "Traefik routes "+host, func() error {
			r, err := c.fetch(url.Values{"url": {traefik + "/auth/session"}, "host": {host}})
			if err == nil && (r.Status == 404 || r.Status >= 500) {
				err = fmt.Errorf("%d %s", r.Status, r.Body)
			}
			return err
		})
	}
	checkGatewayRouteReady(t, stack)

	auth := &authThroughTraefik{c: c, base: traefik, mailpit: "http://smtp:8025"}
	appSeen := func(t *testing.T) []string {
		_, body, err := httpGet(fmt.Sprintf("http://%s:%d/_seen", app.Status.PodIP, appPort))
		var seen []string
		if err == nil {
			err = json.Unmarshal([]byte(body), &seen)
		}
		if err != nil {
			t.Fatalf("asking the app what it saw: %v", err)
		}
		return seen
	}
	nginx := fmt.Sprintf("http://nginx.%s.svc.cluster.local", ns)
	for _, p := range []edgecases.Proxy{
		{Name: "traefik", BrowserURL: traefik, APIURL: traefik, JSONErrors: true},
		{Name: "nginx", BrowserURL: fmt.Sprintf("%s:%d", nginx, nginxBrowserPort), APIURL: fmt.Sprintf("%s:%d", nginx, nginxAPIPort)},
	} {
		t.Run(p.Name, func(t *testing.T) {
			p.Host, p.SigninHost, p.Cookie = shopHost, signinHost, "__Host-session"
			p.Do, p.Login, p.Logout, p.AppSeen = c.do, auth.login, auth.logout, appSeen
			edgecases.Run(t, p)
		})
	}

	t.Run("NetworkPolicy", func(t *testing.T) {
		// The proxies reached the authserver above (each case went through the
		// check). Pods with a proxy's labels (not its Services') reach it; a pod
		// the policy does not name, started before them (so the enforcer has
		// seen it once they reach: a pod it has not seen yet is refused too),
		// cannot.
		addr := fmt.Sprintf("%s:%d", resources.AuthServerName(stack), resources.AuthServerHTTPPort)
		outsider := StartAgent(t, ns, "outsider", labels("outsider"))
		for _, proxy := range []string{"traefik", "nginx"} {
			StartAgent(t, ns, "as-"+proxy, map[string]string{"app": proxy, "role": "probe"}).ExpectReach(t, addr)
		}
		outsider.ExpectBlocked(t, addr)
	})

	t.Run("Latency", func(t *testing.T) {
		measureEdgeLatency(t, c, auth, traefik, nginx, fmt.Sprintf("http://shop.%s.svc.cluster.local", ns))
	})
}

const gatewayGroup = "gateway.networking.k8s.io"

// gatewayObjects: Traefik's GatewayClass (one per test namespace: it is
// cluster-scoped), the Gateway "edge" with a listener on Traefik's entry point,
// the app's HTTPRoute with the operator's Middleware in its only rule (the user's
// part of docs/edge-auth.md, "Traefik"), and a route to the same app without it.
const gatewayObjects = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: traefik-%[1]s}
spec: {controllerName: traefik.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: %[1]s}
spec:
  gatewayClassName: traefik-%[1]s
  listeners: [{name: web, protocol: HTTP, port: %[2]d}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: %[1]s}
spec:
  parentRefs: [{name: edge}]
  hostnames: [%[3]s]
  rules:
  - filters: [{type: ExtensionRef, extensionRef: {group: traefik.io, kind: Middleware, name: %[4]s}}]
    backendRefs: [{name: shop, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: open, namespace: %[1]s}
spec:
  parentRefs: [{name: edge}]
  hostnames: [%[5]s]
  rules: [{backendRefs: [{name: shop, port: 80}]}]
`

// applyYAML creates the objects of a multi-document YAML; cluster-scoped ones
// are deleted after the test (namespaced ones go with the namespace).
func applyYAML(t *testing.T, docs string) {
	t.Helper()
	for _, doc := range strings.Split(docs, "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if err := env.c.Create(Ctx(t), u); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetNamespace() == "" {
			t.Cleanup(func() { _ = env.c.Delete(Ctx(t), u) })
		}
	}
}

// installTraefikCRDs installs what Traefik's providers read: the Gateway API
// CRDs of the version Traefik is built with, and Traefik's own (Middleware),
// from their modules (servers.TraefikCRDs, as the host-process test does).
func installTraefikCRDs(t *testing.T) {
	t.Helper()
	files, err := servers.TraefikCRDs()
	if err != nil {
		t.Fatalf("the Gateway API and Traefik CRDs (%s): %v", servers.TraefikScript, err)
	}
	for _, f := range files {
		if err := kubectl("apply", "--server-side", "-f", f); err != nil {
			t.Fatalf("installing %s: %v", f, err)
		}
	}
}

func service(name string, selector map[string]string, port, target int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{
			{Name: "http", Port: port, TargetPort: intstr.FromInt32(target)}}},
	}
}

// restrictedPod is a pod under Pod Security "restricted" with an emptyDir /tmp
// per container.
func restrictedPod(name string, labels map[string]string, sa string, containers ...corev1.Container) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName:            sa,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			SecurityContext:               resources.RestrictedPodSecurityContext(),
		},
	}
	for _, c := range containers {
		c.ImagePullPolicy = corev1.PullNever
		c.SecurityContext = resources.RestrictedContainerSecurityContext()
		c.Resources = *small()
		vol := "tmp-" + c.Name
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: "/tmp"})
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		pod.Spec.Containers = append(pod.Spec.Containers, c)
	}
	return pod
}

func httpProbe(path string, port int32) *corev1.Probe {
	return &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port)}}}
}

// edgeAppPod runs test/realnode/edgeapp in mode (app or client).
func edgeAppPod(name, mode string, labels map[string]string) *corev1.Pod {
	return restrictedPod(name, labels, "", corev1.Container{
		Name: "edgeapp", Image: EdgeAppImage, Args: []string{mode, fmt.Sprintf(":%d", appPort)},
		ReadinessProbe: httpProbe("/", appPort),
	})
}

// startTraefik runs Traefik v3 (the image of hack/traefik.sh's binary) as a pod
// with its Gateway API and CRD providers watching the test's namespace, under a
// ServiceAccount bound to Traefik's own ClusterRoles (from its module), and its
// Service "traefik" (port 80). The API server listens on 127.0.0.1 only: Traefik
// reaches it through a relay on the pods' gateway address (apiServerRelay).
func startTraefik(t *testing.T, ns, image string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "traefik"}}
	create(t, ns, sa)
	bindTraefikRoles(t, ns, sa.Name)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	if err := env.c.SubResource("token").Create(Ctx(t), sa, tr); err != nil {
		t.Fatalf("a token for Traefik's ServiceAccount: %v", err)
	}
	kubeconfig := traefikKubeconfig(t, apiServerRelay(t), tr.Status.Token)
	create(t, ns, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "traefik-kubeconfig"}, Data: map[string][]byte{"kubeconfig": kubeconfig}})

	proxyLabels := map[string]string{"app": "traefik", "role": "proxy"}
	pod := restrictedPod("traefik", proxyLabels, sa.Name, corev1.Container{
		Name: "traefik", Image: image,
		Args: []string{
			fmt.Sprintf("--entryPoints.web.address=:%d", traefikPort),
			fmt.Sprintf("--entryPoints.ping.address=:%d", traefikPingPort), "--ping.entryPoint=ping",
			"--providers.kubernetesGateway=true", "--providers.kubernetesGateway.namespaces=" + ns,
			"--providers.kubernetesCRD=true", "--providers.kubernetesCRD.namespaces=" + ns,
			"--log.level=INFO", "--global.sendAnonymousUsage=false", "--global.checkNewVersion=false",
		},
		// Traefik takes the in-cluster configuration when KUBERNETES_SERVICE_HOST is
		// set (the kubelet sets it): cleared, it reads KUBECONFIG.
		Env:            []corev1.EnvVar{{Name: "KUBECONFIG", Value: "/etc/traefik-kube/kubeconfig"}, {Name: "KUBERNETES_SERVICE_HOST", Value: ""}},
		VolumeMounts:   []corev1.VolumeMount{{Name: "kube", MountPath: "/etc/traefik-kube", ReadOnly: true}},
		Ports:          []corev1.ContainerPort{{ContainerPort: traefikPort}, {ContainerPort: traefikPingPort}},
		ReadinessProbe: httpProbe("/ping", traefikPingPort),
	})
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "kube", VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: "traefik-kubeconfig"}}})
	create(t, ns, pod, service("traefik", proxyLabels, 80, traefikPort))
	WaitPodReady(t, ns, "traefik", 3*time.Minute)
}

// bindTraefikRoles creates the ClusterRoles of Traefik's RBAC files (Gateway API
// and CRD providers, from its module) for this test and binds them to the
// ServiceAccount; both go after the test.
func bindTraefikRoles(t *testing.T, ns, sa string) {
	t.Helper()
	dir, err := servers.GoModuleDir(servers.TraefikModule, servers.TraefikVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"kubernetes-gateway-rbac.yml", "kubernetes-crd-rbac.yml"} {
		b, err := os.ReadFile(filepath.Join(dir, "docs/content/reference/dynamic-configuration", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			var role rbacv1.ClusterRole
			if err := yaml.Unmarshal([]byte(doc), &role); err != nil || role.Kind != "ClusterRole" {
				continue
			}
			name := ns + "-traefik-" + role.Name
			role.ObjectMeta = metav1.ObjectMeta{Name: name}
			binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}}
			for _, o := range []client.Object{&role, binding} {
				if err := env.c.Create(Ctx(t), o); err != nil {
					t.Fatalf("creating %s: %v", name, err)
				}
				t.Cleanup(func() { _ = env.c.Delete(Ctx(t), o) })
			}
		}
	}
}

// apiServerRelay forwards TCP from the pods' gateway address (the host's end of
// the pod bridge) to the API server, which listens on 127.0.0.1 only, until the
// test ends. It returns the relay's address.
func apiServerRelay(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].Server)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "10.244.0.1:0")
	if err != nil {
		t.Fatalf("listening on the pods' gateway address: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", u.Host)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// traefikKubeconfig is a kubeconfig for Traefik: the relay's address, the API
// server's CA, the name its certificate carries, and the ServiceAccount's token.
func traefikKubeconfig(t *testing.T, relay, token string) []byte {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	out := clientcmdapi.NewConfig()
	out.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://" + relay, CertificateAuthorityData: cluster.CertificateAuthorityData,
		TLSServerName: "kubernetes.default.svc"}
	out.AuthInfos["traefik"] = &clientcmdapi.AuthInfo{Token: token}
	out.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "traefik"}
	out.CurrentContext = "c"
	b, err := clientcmd.Write(*out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startNginx runs Debian's nginx as a pod with the configuration ingress-nginx
// renders for these Ingress annotations (servers.NginxConfig, the host-process
// test's): one container for browsers (auth-signin) on nginxBrowserPort, one for
// APIs (auth-url only, docs/edge-auth.md) on nginxAPIPort; and its Service.
func startNginx(t *testing.T, ns, image string, ann map[string]string) {
	t.Helper()
	auth := servers.NginxAuth{
		AuthURL:      ann[resources.AnnotationNginxAuthURL],
		Headers:      strings.Split(ann[resources.AnnotationNginxAuthResponseHeaders], ","),
		NoAuthPrefix: nginxOpen,
	}
	if auth.AuthURL == "" || ann[resources.AnnotationNginxAuthSignin] == "" {
		t.Fatalf("the Ingress lacks the policy's annotations: %v", ann)
	}
	upstream := fmt.Sprintf("shop.%s.svc.cluster.local:80", ns)
	api := servers.NginxConfig("/tmp", fmt.Sprint(nginxAPIPort), upstream, auth)
	auth.SigninURL = ann[resources.AnnotationNginxAuthSignin]
	browser := servers.NginxConfig("/tmp", fmt.Sprint(nginxBrowserPort), upstream, auth)
	create(t, ns, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Data: map[string]string{"browser.conf": browser, "api.conf": api}})
	container := func(name string, port int32) corev1.Container {
		return corev1.Container{
			Name: name, Image: image,
			Args: []string{"-p", "/tmp", "-c", "/etc/nginx-edge/" + name + ".conf", "-e", "stderr"},
			// NginxConfig's temp folders are under <dir>/tmp; nginx makes only their last level.
			VolumeMounts: []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/nginx-edge", ReadOnly: true},
				{Name: "temp-" + name, MountPath: "/tmp/tmp"}},
			Ports:          []corev1.ContainerPort{{ContainerPort: port}},
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(port)}}},
		}
	}
	pod := restrictedPod("nginx", map[string]string{"app": "nginx", "role": "proxy"}, "",
		container("browser", nginxBrowserPort), container("api", nginxAPIPort))
	pod.Spec.Volumes = append(pod.Spec.Volumes,
		corev1.Volume{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "nginx"}}}},
		corev1.Volume{Name: "temp-browser", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "temp-api", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "nginx", "role": "proxy"}, Ports: []corev1.ServicePort{
			{Name: "browser", Port: nginxBrowserPort}, {Name: "api", Port: nginxAPIPort}}},
	}
	create(t, ns, pod, svc)
	WaitPodReady(t, ns, "nginx", 3*time.Minute)
}

func waitPolicyReady(t *testing.T, p *authv1alpha1.AuthPolicy) {
	t.Helper()
	Eventually(t, 3*time.Minute, "AuthPolicy "+p.Name+" Ready", func() error {
		var got authv1alpha1.AuthPolicy
		if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(p), &got); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, authv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", got.Status.Conditions)
		}
		return nil
	})
}

// checkGatewayRouteReady: the operator saw Traefik accept its HTTPRoute.
func checkGatewayRouteReady(t *testing.T, stack *authv1alpha1.AuthStack) {
	t.Helper()
	Eventually(t, 3*time.Minute, "GatewayRouteReady", func() error {
		var s authv1alpha1.AuthStack
		if err := env.c.Get(Ctx(t), client.ObjectKeyFromObject(stack), &s); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(s.Status.Conditions, authv1alpha1.ConditionGatewayRouteReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
}

// edgeClient sends requests from the client pod (edgeapp client).
type edgeClient struct{ pod *corev1.Pod }

// fetch has the client pod send one request (url.Values as edgeapp's /fetch takes them).
func (c *edgeClient) fetch(q url.Values) (edgecases.Response, error) {
	var r struct {
		Status int
		Header http.Header
		Body   string
	}
	status, body, err := httpGet(fmt.Sprintf("http://%s:%d/fetch?%s", c.pod.Status.PodIP, appPort, q.Encode()))
	if err == nil && status != 200 {
		err = fmt.Errorf("the client pod: %d %s", status, strings.TrimSpace(body))
	}
	if err == nil {
		err = json.Unmarshal([]byte(body), &r)
	}
	return edgecases.Response{Status: r.Status, Header: r.Header, Body: []byte(r.Body)}, err
}

func headerValues(h http.Header) []string {
	var out []string
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, k+": "+v)
		}
	}
	return out
}

func (c *edgeClient) do(t *testing.T, u, host string, h http.Header) edgecases.Response {
	t.Helper()
	r, err := c.fetch(url.Values{"url": {u}, "host": {host}, "h": headerValues(h)})
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", u, host, err)
	}
	return r
}

// authThroughTraefik signs users in and out through Traefik's route to the
// authserver (spec.gateway), from the client pod; the verification email is
// read from mailpit.
type authThroughTraefik struct {
	c             *edgeClient
	base, mailpit string
}

func (a *authThroughTraefik) call(t *testing.T, method, path, body string, want int, hdr ...string) []byte {
	t.Helper()
	q := url.Values{"method": {method}, "url": {a.base + path}, "host": {authHost}, "body": {body}, "h": hdr}
	r, err := a.c.fetch(q)
	if err == nil && r.Status != want {
		err = fmt.Errorf("HTTP %d, want %d: %s", r.Status, want, r.Body)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r.Body
}

var verifyToken = regexp.MustCompile(`token=([A-Za-z0-9_-]+)`)

func (a *authThroughTraefik) login(t *testing.T, email string) edgecases.Session {
	t.Helper()
	const password = "correct horse battery staple"
	creds := fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
	a.call(t, "POST", "/auth/signup", creds, 202)
	var token string
	Eventually(t, time.Minute, "the verification email to "+email, func() error {
		r, err := a.c.fetch(url.Values{"url": {a.mailpit + "/api/v1/search?query=" + url.QueryEscape("to:"+email)}})
		var found struct{ Messages []struct{ ID string } }
		if err == nil {
			err = json.Unmarshal(r.Body, &found)
		}
		if err != nil || len(found.Messages) == 0 {
			return fmt.Errorf("none yet (%v)", err)
		}
		if r, err = a.c.fetch(url.Values{"url": {a.mailpit + "/api/v1/message/" + found.Messages[0].ID}}); err != nil {
			return err
		}
		m := verifyToken.FindSubmatch(r.Body)
		if m == nil {
			return fmt.Errorf("no token in the email")
		}
		token = string(m[1])
		return nil
	})
	a.call(t, "POST", "/auth/verify-email", fmt.Sprintf(`{"token":%q}`, token), 200)
	var login struct{ Token string }
	if err := json.Unmarshal(a.call(t, "POST", "/auth/login", creds, 200), &login); err != nil || login.Token == "" {
		t.Fatalf("login: no token (%v)", err)
	}
	var sess struct{ User struct{ ID string } }
	if err := json.Unmarshal(a.call(t, "GET", "/auth/session", "", 200, "Authorization: Bearer "+login.Token), &sess); err != nil {
		t.Fatal(err)
	}
	return edgecases.Session{Token: login.Token, UserID: sess.User.ID, Email: email}
}

func (a *authThroughTraefik) logout(t *testing.T, token string) {
	t.Helper()
	a.call(t, "POST", "/auth/logout", "", 204, "Authorization: Bearer "+token)
}

// measureEdgeLatency: from the client pod, c=4 keep-alive connections, rounds
// alternating each proxy with and without the check in the path (the same app
// behind it), and the app straight through its Service; the medians of the
// rounds' p50 are logged. A measurement for docs/benchmarks.md, not a timed test:
// only that every answer was a 200 is asserted.
func measureEdgeLatency(t *testing.T, c *edgeClient, a *authThroughTraefik, traefik, nginx, app string) {
	s := a.login(t, "load@example.com")
	bearer := "Authorization: Bearer " + s.Token
	targets := []struct {
		name, url, host string
		h               []string
	}{
		{"app (Service, no proxy)", app + "/orders", "", nil},
		{"traefik without the check", traefik + "/orders", openHost, nil},
		{"traefik with the check", traefik + "/orders", shopHost, []string{bearer}},
		{"nginx without the check", fmt.Sprintf("%s:%d%s/orders", nginx, nginxAPIPort, nginxOpen), shopHost, nil},
		{"nginx with the check", fmt.Sprintf("%s:%d/orders", nginx, nginxAPIPort), shopHost, []string{bearer}},
	}
	const rounds, seconds = 5, "2"
	p50 := map[string][]float64{}
	hc := &http.Client{Timeout: time.Minute}
	for round := 0; round < rounds; round++ {
		for _, tg := range targets {
			q := url.Values{"url": {tg.url}, "host": {tg.host}, "h": tg.h, "c": {"4"}, "seconds": {seconds}}
			resp, err := hc.Get(fmt.Sprintf("http://%s:%d/load?%s", c.pod.Status.PodIP, appPort, q.Encode()))
			if err != nil {
				t.Fatalf("load %s: %v", tg.name, err)
			}
			var r struct {
				OK, Other int
				P50ms     float64 `json:"p50_ms"`
				P90ms     float64 `json:"p90_ms"`
				P99ms     float64 `json:"p99_ms"`
				Rate      string
			}
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if err != nil || r.Other != 0 || r.OK == 0 {
				t.Fatalf("load %s: %d answers not 200, %d ok (%v)", tg.name, r.Other, r.OK, err)
			}
			p50[tg.name] = append(p50[tg.name], r.P50ms)
			t.Logf("round %d %-28s p50 %.2f ms p90 %.2f ms p99 %.2f ms, %s", round+1, tg.name, r.P50ms, r.P90ms, r.P99ms, r.Rate)
		}
	}
	med := func(name string) float64 { v := slices.Clone(p50[name]); slices.Sort(v); return v[len(v)/2] }
	for _, proxy := range []string{"traefik", "nginx"} {
		without, with := med(proxy+" without the check"), med(proxy+" with the check")
		t.Logf("%s: median p50 %.2f ms without the check, %.2f ms with it: the check adds %.2f ms", proxy, without, with, with-without)
	}
	t.Logf("app straight through its Service: median p50 %.2f ms", med("app (Service, no proxy)"))
}
