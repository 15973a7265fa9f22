package installtest

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
)

var namespacedInstallPath = filepath.Join(repoRoot, "dist", "install-namespaced.yaml")

// The namespaces config/namespaced watches.
var watched = []string{"team-a", "team-b"}

// TestNamespacedInstallYAML applies dist/install-namespaced.yaml (config/namespaced) to
// a real API server: the operator's service account may work on AuthStacks and their
// children in the watched namespaces only, no ClusterRole gives it any object, and the
// real reconciler, impersonating that service account with --watch-namespace, brings
// the sample up in a watched namespace.
func TestNamespacedInstallYAML(t *testing.T) {
	objs := readObjects(t, namespacedInstallPath)
	cfg := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := newApplier(t, cfg)
	// The watched namespaces are the user's: they exist before the install.
	for _, ns := range append(slices.Clone(watched), "other") {
		if _, err := a.apply(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns},
		}}); err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}
	for _, obj := range objs {
		if _, err := a.apply(ctx, obj); err != nil {
			t.Fatalf("applying %s: %v", describe(obj), err)
		}
	}
	waitEstablished(t, ctx, a, objs)

	t.Run("the operator's ClusterRoles grant no objects", func(t *testing.T) {
		for _, o := range objs {
			if o.GetKind() != "ClusterRoleBinding" {
				continue
			}
			role, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			rules, _, _ := unstructured.NestedSlice(find(objs, "ClusterRole", role).Object, "rules")
			for _, r := range rules {
				groups, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "apiGroups")
				for _, g := range groups {
					if g != "authentication.k8s.io" && g != "authorization.k8s.io" {
						t.Errorf("%s binds ClusterRole %s with a rule on API group %q", describe(o), role, g)
					}
				}
			}
		}
		dep := find(objs, "Deployment", operatorDeploy)
		args, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
		if !strings.Contains(strings.Join(toStrings(args[0].(map[string]any)["args"]), " "), "--watch-namespace="+strings.Join(watched, ",")) {
			t.Errorf("the operator's args %v do not watch %v", args[0].(map[string]any)["args"], watched)
		}
	})

	t.Run("permissions", func(t *testing.T) {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		attr := func(verb, group, resource, ns string) authorizationv1.ResourceAttributes {
			return authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: ns}
		}
		for _, ns := range watched {
			for _, a := range []authorizationv1.ResourceAttributes{
				attr("watch", "auth.leanauth.dev", "authstacks", ns), attr("patch", "auth.leanauth.dev", "authstacks/status", ns),
				attr("list", "", "secrets", ns), attr("create", "", "secrets", ns), attr("patch", "apps", "deployments", ns),
				attr("delete", "apps", "statefulsets", ns), attr("watch", "", "pods", ns), attr("create", "events.k8s.io", "events", ns),
			} {
				if a.Resource == "authstacks/status" {
					a.Resource, a.Subresource = "authstacks", "status"
				}
				if !operatorCan(t, ctx, cs, a) {
					t.Errorf("the operator may not %s %s/%s in watched namespace %s", a.Verb, a.Group, a.Resource, ns)
				}
			}
		}
		for _, a := range []authorizationv1.ResourceAttributes{
			attr("list", "", "secrets", ""), attr("list", "", "secrets", "other"), attr("get", "", "secrets", "other"),
			attr("list", "auth.leanauth.dev", "authstacks", ""), attr("delete", "apps", "deployments", "other"),
			attr("list", "", "pods", ""), attr("delete", "", "services", "other"),
		} {
			if operatorCan(t, ctx, cs, a) {
				where := "cluster-wide"
				if a.Namespace != "" {
					where = "in unwatched namespace " + a.Namespace
				}
				t.Errorf("the operator may %s %s/%s %s", a.Verb, a.Group, a.Resource, where)
			}
		}
	})

	t.Run("operator reconciles the sample as its service account", func(t *testing.T) {
		applySamples(t, ctx, a, watched[0])
		runOperatorAsServiceAccount(t, ctx, cfg, watched[0], "example", watched)
	})
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}
