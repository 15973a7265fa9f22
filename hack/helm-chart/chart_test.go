package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/leanauth/authstack/internal/servers"
)

// kubeVersion is the API server the tests run (helm template cannot ask one; a helm
// built by hack/go-tool.sh, without Helm's release ldflags, would assume v1.20).
const kubeVersion = "1.37.2"

var (
	repoRoot   = filepath.Join("..", "..")
	chart      = filepath.Join(repoRoot, chartDir)
	install    = filepath.Join(repoRoot, "dist", "install.yaml")
	namespaced = filepath.Join(repoRoot, "dist", "install-namespaced.yaml")
)

// TestChartUpToDate regenerates the chart from dist/ and fails when the committed
// chart differs (run make build-installer) or holds a stale generated template.
func TestChartUpToDate(t *testing.T) {
	version, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(install, namespaced, strings.TrimSpace(string(version)))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(chart, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/%s is not what hack/helm-chart generates from dist/ (err %v): run make build-installer", chartDir, name, err)
		}
	}
	onDisk, _ := filepath.Glob(filepath.Join(chart, "templates", generated+"*"))
	for _, p := range onDisk {
		if _, ok := files[filepath.Join("templates", filepath.Base(p))]; !ok {
			t.Errorf("%s is stale (hack/helm-chart no longer generates it): run make build-installer", p)
		}
	}
}

func helmBin(t *testing.T) string {
	t.Helper()
	bin, err := servers.CachedBinary("HELM_BIN", "helm", "hack/helm.sh")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// helm runs the helm CLI with a private home, so no user's repositories or plugins count.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func render(t *testing.T, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "authstack", chart, "--namespace", operatorNS, "--include-crds", "--kube-version", kubeVersion}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return decode(t, "helm template", helm(t, args...))
}

func decode(t *testing.T, what, s string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(s, -1) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("decoding %s: %v\n%s", what, err, doc)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}

func readFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, path, string(raw))
}

// withoutHelm drops what only Helm or only kustomize puts on an object: Helm's
// labels, kustomize's managed-by, and the CRDs' resource-policy annotation.
func withoutHelm(objs []*unstructured.Unstructured) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, o := range objs {
		o = o.DeepCopy()
		labels := o.GetLabels()
		for _, k := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"} {
			delete(labels, k)
		}
		o.SetLabels(labels)
		if ann := o.GetAnnotations(); ann != nil {
			delete(ann, "helm.sh/resource-policy")
			o.SetAnnotations(ann)
		}
		out[key(o)] = o.Object
	}
	return out
}

func key(o *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}

func diffObjects(t *testing.T, what string, got, want map[string]map[string]any) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, w := got[k], want[k]
		switch {
		case g == nil:
			t.Errorf("%s: %s is missing from helm template", what, k)
		case w == nil:
			t.Errorf("%s: helm template renders %s, which is not there", what, k)
		case !reflect.DeepEqual(g, w):
			gy, _ := yaml.Marshal(g)
			wy, _ := yaml.Marshal(w)
			t.Errorf("%s: %s differs\n--- helm template\n%s\n--- kustomize\n%s", what, k, gy, wy)
		}
	}
}

// TestTemplateDefaultsEqualInstall: helm template with the default values renders
// dist/install.yaml, and with watchNamespaces=team-a,team-b renders
// dist/install-namespaced.yaml (config/namespaced's example), modulo Helm's labels.
func TestTemplateDefaultsEqualInstall(t *testing.T) {
	diffObjects(t, "default values vs dist/install.yaml", withoutHelm(render(t)), withoutHelm(readFile(t, install)))
	diffObjects(t, "watchNamespaces={team-a,team-b} vs dist/install-namespaced.yaml",
		withoutHelm(render(t, "watchNamespaces={team-a,team-b}")), withoutHelm(readFile(t, namespaced)))
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func container(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	d := find(t, objs, "Deployment", deploymentName)
	if d == nil {
		t.Fatal("no operator Deployment rendered")
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	return cs[0].(map[string]any)
}

func args(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	var out []string
	for _, a := range container(t, objs)["args"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

// TestTemplateValues: each value changes what it says, and nothing else is left behind.
func TestTemplateValues(t *testing.T) {
	objs := render(t, "image.repository=registry.example.com/op", "image.tag=v9.9.9", "image.pullPolicy=Always",
		"resources.limits.memory=1Gi", "resources.requests.cpu=7m", "authserverImage=registry.example.com/as:v9",
		"metrics.port=9443", "crds.keep=false", "namespace.create=false")
	c := container(t, objs)
	if c["image"] != "registry.example.com/op:v9.9.9" || c["imagePullPolicy"] != "Always" {
		t.Errorf("image %v pullPolicy %v", c["image"], c["imagePullPolicy"])
	}
	res := c["resources"].(map[string]any)
	if res["limits"].(map[string]any)["memory"] != "1Gi" || res["requests"].(map[string]any)["cpu"] != "7m" {
		t.Errorf("resources %v", res)
	}
	a := args(t, objs)
	for _, want := range []string{"--authserver-image=registry.example.com/as:v9", "--metrics-bind-address=:9443", "--metrics-secure"} {
		if !contains(a, want) {
			t.Errorf("args %v lack %s", a, want)
		}
	}
	ports := fmt.Sprint(c["ports"])
	if !strings.Contains(ports, "9443") {
		t.Errorf("container ports %s lack 9443", ports)
	}
	svc := find(t, objs, "Service", metricsService)
	if p, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports"); fmt.Sprint(p[0].(map[string]any)["port"]) != "9443" {
		t.Errorf("metrics Service ports %v", p)
	}
	if find(t, objs, "Namespace", operatorNS) != nil {
		t.Error("namespace.create=false still renders the Namespace")
	}
	if crd := find(t, objs, "CustomResourceDefinition", "authstacks.auth.leanauth.dev"); crd.GetAnnotations()["helm.sh/resource-policy"] != "" {
		t.Error("crds.keep=false still keeps the CRD")
	}
	if crd := find(t, render(t), "CustomResourceDefinition", "authstacks.auth.leanauth.dev"); crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Error("by default the CRD is not kept on helm uninstall")
	}

	off := render(t, "metrics.enabled=false", "crds.install=false")
	if a := args(t, off); !contains(a, "--metrics-bind-address=0") || contains(a, "--metrics-secure") {
		t.Errorf("metrics.enabled=false: args %v", a)
	}
	if strings.Contains(fmt.Sprint(container(t, off)["ports"]), "https-metrics") || find(t, off, "Service", metricsService) != nil {
		t.Error("metrics.enabled=false still renders the metrics port or Service")
	}
	if find(t, off, "CustomResourceDefinition", "authstacks.auth.leanauth.dev") != nil {
		t.Error("crds.install=false still renders the CRD")
	}

	if find(t, render(t), "ServiceMonitor", "authstack-controller-manager-metrics-monitor") != nil {
		t.Error("the ServiceMonitor is rendered by default")
	}
	sm := find(t, render(t, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"), "ServiceMonitor", "authstack-controller-manager-metrics-monitor")
	if sm == nil {
		t.Fatal("metrics.serviceMonitor.enabled=true renders no ServiceMonitor")
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svcSel, _, _ := unstructured.NestedStringMap(find(t, render(t), "Service", metricsService).Object, "metadata", "labels")
	ep := eps[0].(map[string]any)
	if ep["port"] != "https" || ep["scheme"] != "https" || sm.GetLabels()["release"] != "prom" || sm.GetNamespace() != operatorNS {
		t.Errorf("ServiceMonitor %v", sm.Object)
	}
	for k, v := range sel {
		if svcSel[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the metrics Service (labels %v) lacks", k, v, svcSel)
		}
	}
}

func contains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

// TestHelmLint runs helm lint --strict with the default and the namespaced values.
func TestHelmLint(t *testing.T) {
	helm(t, "lint", "--strict", "--kube-version", kubeVersion, chart)
	helm(t, "lint", "--strict", "--kube-version", kubeVersion, chart, "--set", "watchNamespaces={team-a,team-b}", "--set", "metrics.serviceMonitor.enabled=true")
}

// TestServerSideDryRun applies the rendered chart, default and namespaced, with
// server-side apply in dry-run mode to a real kube-apiserver (envtest): every
// object passes the API server's validation and admission (Pod Security
// "restricted" on the operator's namespace included).
func TestServerSideDryRun(t *testing.T) {
	// The controllers' stand-in for the Prometheus Operator's ServiceMonitor CRD.
	cfg := startAPIServer(t, filepath.Join(repoRoot, "controllers", "testdata", "monitoring-crds"))
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(cfg)
	// Dry-run objects need their namespace to exist.
	for _, ns := range []string{operatorNS, "team-a", "team-b"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		set  []string
	}{
		{"default", nil},
		{"namespaced", []string{"watchNamespaces={team-a,team-b}"}},
		{"metrics off", []string{"metrics.enabled=false"}},
		{"ServiceMonitor", []string{"metrics.serviceMonitor.enabled=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.set...)
			if tc.name == "ServiceMonitor" && find(t, objs, "ServiceMonitor", "authstack-controller-manager-metrics-monitor") == nil {
				t.Fatal("no ServiceMonitor rendered")
			}
			dryRunApply(t, ctx, cfg, objs)
		})
	}
}

func dryRunApply(t *testing.T, ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) {
	t.Helper()
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn := dynamic.NewForConfigOrDie(cfg)
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("mapping %s: %v", key(o), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "helm-chart-test", Force: true, DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("server-side dry-run apply of %s: %v", key(o), err)
		}
	}
}

// startAPIServer starts kube-apiserver and etcd (envtest) with the CRDs of crdDirs.
func startAPIServer(t *testing.T, crdDirs ...string) *rest.Config {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, or " +
			"KUBEBUILDER_ASSETS=$(hack/control-plane.sh kube-apiserver etcd) go test ./hack/helm-chart/")
	}
	env := &envtest.Environment{CRDDirectoryPaths: crdDirs, ErrorIfCRDPathMissing: len(crdDirs) > 0}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return cfg
}

// TestHelmInstall runs the commands of docs/install.md against a real API server:
// helm install into a namespace created first (the chart's Namespace, with Pod
// Security "restricted", takes it over), helm upgrade to watched namespaces (the ClusterRole
// gives way to Roles), and helm uninstall, which keeps the CRDs.
func TestHelmInstall(t *testing.T) {
	cfg := startAPIServer(t)
	ctx := context.Background()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	k := clientcmdapi.NewConfig()
	k.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	k.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	k.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	k.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*k, kc); err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)

	// kubectl create namespace authstack-system: Helm keeps its release there, and
	// takes the Namespace over from the chart (Pod Security labels).
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	helm(t, "install", "authstack", chart, "--namespace", operatorNS, "--take-ownership", "--kubeconfig", kc)
	ns, err := cs.CoreV1().Namespaces().Get(ctx, operatorNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace labels %v: Pod Security restricted is not enforced", ns.Labels)
	}
	d, err := cs.AppsV1().Deployments(operatorNS).Get(ctx, deploymentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Labels["app.kubernetes.io/managed-by"] != "Helm" || d.Labels["app.kubernetes.io/instance"] != "authstack" {
		t.Errorf("Deployment labels %v", d.Labels)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, "authstack-manager-role", metav1.GetOptions{}); err != nil {
		t.Errorf("cluster-wide install: %v", err)
	}

	for _, n := range []string{"team-a", "team-b"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	helm(t, "upgrade", "authstack", chart, "--namespace", operatorNS, "--reuse-values", "--set", "watchNamespaces={team-a,team-b}", "--kubeconfig", kc)
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, "authstack-manager-role", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the manager ClusterRole after the upgrade to watched namespaces: %v", err)
	}
	for _, n := range []string{"team-a", "team-b"} {
		if _, err := cs.RbacV1().Roles(n).Get(ctx, "authstack-manager-role", metav1.GetOptions{}); err != nil {
			t.Errorf("Role in %s: %v", n, err)
		}
	}
	d, err = cs.AppsV1().Deployments(operatorNS).Get(ctx, deploymentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := d.Spec.Template.Spec.Containers[0].Args; !contains(a, "--watch-namespace=team-a,team-b") {
		t.Errorf("args after the upgrade %v", a)
	}

	helm(t, "uninstall", "authstack", "--namespace", operatorNS, "--kubeconfig", kc)
	if _, err := cs.AppsV1().Deployments(operatorNS).Get(ctx, deploymentName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Deployment after helm uninstall: %v", err)
	}
	// The Namespace goes too (terminating: envtest runs no namespace controller).
	if ns, err := cs.CoreV1().Namespaces().Get(ctx, operatorNS, metav1.GetOptions{}); err == nil && ns.DeletionTimestamp == nil {
		t.Errorf("namespace %s is not being deleted after helm uninstall", operatorNS)
	}
	ext := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := ext.Get(ctx, "authstacks.auth.leanauth.dev", metav1.GetOptions{}); err != nil {
		t.Errorf("the CRD after helm uninstall (crds.keep): %v", err)
	}
}

// TestValuesSchema: values.schema.json refuses bad values before anything renders,
// naming the value.
func TestValuesSchema(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"image.pullPolicy=Sometimes", "pullPolicy"},
		{"metrics.port=70000", "port"},
		{"watchNamespaces={Team_A}", "watchNamespaces"},
		{"imagee.tag=v1", "imagee"},
	} {
		cmd := exec.Command(helmBin(t), "template", "authstack", chart, "--kube-version", kubeVersion, "--set", tc.set)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("helm template --set %s: %v, want an error naming %s\n%s", tc.set, err, tc.want, out)
		}
	}
}

// TestValuesDocumented: every value of values.yaml is in docs/install.md's table.
func TestValuesDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	var check func(prefix string, m map[string]any)
	check = func(prefix string, m map[string]any) {
		for k, v := range m {
			name := prefix + k
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && name != "resources" {
				check(name+".", sub)
				continue
			}
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/install.md does not describe the value %s", name)
			}
		}
	}
	check("", values)
}
