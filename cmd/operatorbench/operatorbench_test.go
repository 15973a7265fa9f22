package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/leanauth/authstack/controllers/resources"
)

// auditLine is one audit event as kube-apiserver writes it (Metadata level).
// The API server takes 10 ms on each.
func auditLine(stage, at, agent, verb, group, resource, sub string) string {
	received, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		panic(err)
	}
	done := received.Add(10 * time.Millisecond).Format("2006-01-02T15:04:05.000000Z07:00") // metav1.MicroTime
	obj := `"objectRef":{"resource":"` + resource + `","namespace":"op-00","name":"x","apiGroup":"` + group + `","apiVersion":"v1"`
	if sub != "" {
		obj += `,"subresource":"` + sub + `"`
	}
	obj += `},`
	return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"` + stage +
		`","requestURI":"/x","verb":"` + verb + `","user":{"username":"admin"},"sourceIPs":["127.0.0.1"],"userAgent":"` + agent +
		`",` + obj + `"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"` + at +
		`","stageTimestamp":"` + done + `"}`
}

func TestCountAuditLog(t *testing.T) {
	const op = "manager/v0.0.0 (linux/amd64) kubernetes/$Format"
	const kcm = "kube-controller-manager/v1.37.2 (linux/amd64) kubernetes/abc/system:serviceaccount:kube-system:deployment-controller"
	lines := []string{
		auditLine("ResponseComplete", "2026-11-29T14:00:00.500000Z", op, "patch", "apps", "deployments", ""), // before the window
		auditLine("ResponseComplete", "2026-11-29T14:00:01.000000Z", op, "get", "", "secrets", ""),
		auditLine("ResponseStarted", "2026-11-29T14:00:01.100000Z", op, "get", "", "secrets", ""), // another stage of one request
		auditLine("RequestReceived", "2026-11-29T14:00:01.100000Z", op, "patch", "apps", "deployments", ""),
		auditLine("ResponseComplete", "2026-11-29T14:00:01.200000Z", op, "patch", "apps", "deployments", ""),
		auditLine("ResponseComplete", "2026-11-29T14:00:01.300000Z", op, "update", "auth.leanauth.dev", "authstacks", "status"),
		auditLine("ResponseComplete", "2026-11-29T14:00:01.400000Z", op, "create", "events.k8s.io", "events", ""),
		auditLine("ResponseComplete", "2026-11-29T14:00:01.500000Z", op, "patch", "", "events", ""),
		auditLine("ResponseComplete", "2026-11-29T14:00:01.600000Z", op, "update", "coordination.k8s.io", "leases", ""),
		auditLine("ResponseComplete", "2026-11-29T14:00:01.700000Z", op, "watch", "apps", "deployments", ""),
		auditLine("ResponseComplete", "2026-11-29T14:00:01.800000Z", kcm, "update", "apps", "deployments", "status"), // another client
		auditLine("Panic", "2026-11-29T14:00:01.900000Z", op, "delete", "", "configmaps", ""),
		"",
		auditLine("ResponseComplete", "2026-11-29T14:00:02.000000Z", op, "create", "", "secrets", ""), // at the end: outside [from, to)
	}
	dir := t.TempDir()
	// Two files, as after a rotation; readAuditLogs reads both and sorts by time.
	if err := os.WriteFile(filepath.Join(dir, "audit-2026-11-29T14-00-01.000.log"), []byte(strings.Join(lines[:6], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), []byte(strings.Join(lines[6:], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reqs, err := readAuditLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 11 {
		t.Fatalf("read %d requests, want 11 (one per request, ResponseComplete or Panic)", len(reqs))
	}
	for i := 1; i < len(reqs); i++ {
		if reqs[i].at.Before(reqs[i-1].at) {
			t.Fatalf("requests not in time order: %v before %v", reqs[i-1].at, reqs[i].at)
		}
	}
	from := time.Date(2026, 11, 29, 14, 0, 1, 0, time.UTC)
	got := count(reqs, agentOperator, from, from.Add(time.Second))
	ms10 := 10 * time.Millisecond
	want := tally{requests: 4, writes: 3, served: 4 * ms10, watches: 1, other: 3, byKind: map[string]int{
		"get secrets": 1, "patch deployments": 1, "update authstacks/status": 1, "delete configmaps": 1,
	}, kindTime: map[string]time.Duration{
		"get secrets": ms10, "patch deployments": ms10, "update authstacks/status": ms10, "delete configmaps": ms10,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("count = %+v, want %+v", got, want)
	}
	if s := got.summary(); s != "delete configmaps=1 (0.0 s), get secrets=1 (0.0 s), patch deployments=1 (0.0 s), update authstacks/status=1 (0.0 s)" {
		t.Errorf("summary = %q", s)
	}
	if got := count(reqs, "kube-controller-manager/", from, from.Add(time.Second)); got.writes != 1 || got.requests != 1 {
		t.Errorf("controller-manager tally = %+v, want its one write", got)
	}
	if got := count(reqs, agentOperator, from.Add(time.Hour), from.Add(2*time.Hour)); got.requests != 0 || got.summary() != "none" {
		t.Errorf("empty window tally = %+v", got)
	}
}

func TestParseAuditLogRejectsGarbage(t *testing.T) {
	if _, err := parseAuditLog(strings.NewReader("{not json\n")); err == nil {
		t.Fatal("no error for a line that is not JSON")
	}
	if _, err := readAuditLogs(t.TempDir()); err == nil {
		t.Fatal("no error for a folder without an audit log")
	}
}

// The policy the benchmark gives the API server parses and logs every request once.
func TestAuditPolicy(t *testing.T) {
	var p auditv1.Policy
	if err := yaml.UnmarshalStrict([]byte(auditPolicy), &p); err != nil {
		t.Fatal(err)
	}
	want := []auditv1.Stage{auditv1.StageRequestReceived, auditv1.StageResponseStarted}
	if p.Kind != "Policy" || len(p.Rules) != 1 || p.Rules[0].Level != auditv1.LevelMetadata ||
		len(p.Rules[0].Resources) != 0 || !reflect.DeepEqual(p.OmitStages, want) {
		t.Fatalf("policy = %+v", p)
	}
}

func TestCounterSum(t *testing.T) {
	const text = `# HELP controller_runtime_reconcile_total Total number of reconciliations per controller
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="authstack",result="error"} 2
controller_runtime_reconcile_total{controller="authstack",result="requeue"} 0
controller_runtime_reconcile_total{controller="authstack",result="success"} 401
controller_runtime_reconcile_total{controller="other",result="success"} 7
# HELP workqueue_depth Current depth of workqueue
# TYPE workqueue_depth gauge
workqueue_depth{controller="authstack",name="authstack"} 3
`
	if n, err := counterSum(text, "controller_runtime_reconcile_total", map[string]string{"controller": "authstack"}); err != nil || n != 403 {
		t.Errorf("reconcile total = %v, %v; want 403", n, err)
	}
	if n, err := counterSum(text, "workqueue_depth", map[string]string{"name": "authstack"}); err != nil || n != 3 {
		t.Errorf("depth = %v, %v; want 3", n, err)
	}
	if _, err := counterSum(text, "missing_total", nil); err == nil {
		t.Error("no error for a missing metric")
	}
}

// The plain client renders valid objects of the bench's stack, none owned (the garbage
// collector would delete them), two of them Deployments.
func TestRenderStack(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	stack := benchStack("op-03", 7, benchSpec())
	stack.Spec.Pooler.Enabled = nil // the CRD default (true), as the API server would fill in
	objs, err := renderStack(stack, make([]byte, resources.PepperBytes))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		gvk, err := apiutil.GVKForObject(o, scheme)
		if err != nil {
			t.Fatal(err)
		}
		kinds[gvk.Kind]++
		if o.GetNamespace() != "op-03" || len(o.GetOwnerReferences()) != 0 {
			t.Errorf("%s %s: namespace %q, owners %v", gvk.Kind, o.GetName(), o.GetNamespace(), o.GetOwnerReferences())
		}
		if errs := validation.IsDNS1123Subdomain(o.GetName()); len(errs) > 0 {
			t.Errorf("%s %q: %v", gvk.Kind, o.GetName(), errs)
		}
		if d, ok := o.(*appsv1.Deployment); ok && (d.Spec.Replicas == nil || *d.Spec.Replicas != 1) {
			t.Errorf("Deployment %s: replicas %v, want 1", d.Name, d.Spec.Replicas)
		}
		u, err := applyBody(scheme, o)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk.Kind, o.GetName(), err)
		}
		if _, ok := u.Object["status"]; ok || u.GetKind() != gvk.Kind || u.Object["metadata"].(map[string]any)["creationTimestamp"] != nil {
			t.Errorf("%s %s: apply body has a status, a null creationTimestamp or no kind: %v", gvk.Kind, o.GetName(), u.Object)
		}
	}
	if n := podsPerStack(objs); n != 2 {
		t.Errorf("pods per stack = %d, want 2", n)
	}
	if kinds["Deployment"] != 2 || kinds["Ingress"] != 1 || kinds["HorizontalPodAutoscaler"] != 0 || kinds["NetworkPolicy"] == 0 {
		t.Errorf("rendered kinds %v: want the authserver and pgbouncer Deployments, an Ingress, NetworkPolicies, no HPA", kinds)
	}
	managed := benchStack("op-03", 7, benchSpec())
	managed.Spec.Redis.URLSecretRef = nil
	if _, err := renderStack(managed, nil); err == nil {
		t.Error("no error for a managed Redis, which renderStack does not render")
	}
}
