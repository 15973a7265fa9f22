package resources

import (
	"reflect"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/leanauth/authstack/authserver/metrics"
	"github.com/leanauth/authstack/internal/promql"
)

func TestMonitoringEnabledDefaultsOff(t *testing.T) {
	s := sampleStack()
	if MonitoringEnabled(s) {
		t.Error("monitoring on without being asked for")
	}
	s.Spec.Monitoring.Enabled = ptr.To(true)
	if !MonitoringEnabled(s) {
		t.Error("monitoring.enabled true not honoured")
	}
}

func TestServiceMonitor(t *testing.T) {
	s := sampleStack()
	s.Spec.Monitoring.ServiceMonitor.Labels = map[string]string{"release": "kps", LabelManagedBy: "someone-else"}
	sm, err := AuthServerServiceMonitor(s)
	if err != nil {
		t.Fatal(err)
	}
	checkMonitoringMeta(t, sm, ServiceMonitorGVK.Kind)
	if sm.GetLabels()["release"] != "kps" {
		t.Errorf("user label missing: %v", sm.GetLabels())
	}
	if sm.GetLabels()[LabelManagedBy] != FieldOwner {
		t.Errorf("a user label overrode ours: %v", sm.GetLabels())
	}
	// It selects exactly the authserver Service, on its metrics port.
	svc := AuthServerService(s)
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if len(sel) == 0 {
		t.Fatal("ServiceMonitor has no selector")
	}
	for k, v := range sel {
		if svc.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the Service labels %v", k, v, svc.Labels)
		}
	}
	ns, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames")
	if !reflect.DeepEqual(ns, []string{testNamespace}) {
		t.Errorf("namespaceSelector = %v", ns)
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("endpoints = %v", eps)
	}
	ep := eps[0].(map[string]any)
	var port string
	for _, p := range svc.Spec.Ports {
		if p.Port == AuthServerMetricsPort {
			port = p.Name
		}
	}
	if ep["port"] != port || port == "" || ep["path"] != "/metrics" {
		t.Errorf("endpoint %v does not scrape the Service's metrics port %q", ep, port)
	}
	// Deterministic: the same input renders the same object.
	again, _ := AuthServerServiceMonitor(s)
	if !reflect.DeepEqual(sm, again) {
		t.Error("two renders differ")
	}
}

func checkMonitoringMeta(t *testing.T, u *unstructured.Unstructured, kind string) {
	t.Helper()
	if u.GetAPIVersion() != "monitoring.coreos.com/v1" || u.GetKind() != kind {
		t.Errorf("type = %s %s", u.GetAPIVersion(), u.GetKind())
	}
	if u.GetName() != "demo-authserver" || u.GetNamespace() != testNamespace {
		t.Errorf("name = %s/%s", u.GetNamespace(), u.GetName())
	}
	refs := u.GetOwnerReferences()
	if len(refs) != 1 || refs[0].Kind != "AuthStack" || !ptr.Deref(refs[0].Controller, false) {
		t.Errorf("owner references = %+v", refs)
	}
	if _, found := u.Object["metadata"].(map[string]any)["creationTimestamp"]; found {
		t.Error("metadata carries creationTimestamp: apply would try to set it")
	}
}

// authServerMetricNames are the series the authserver registry exposes.
func authServerMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New(func() float64 { return 0 }, func() float64 { return 0 })
	m.AuthEvent("LOGIN_FAIL")
	m.EmailEvent("QUEUED")
	m.Route("GET", "/health").Observe(500, 0.001)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			out[f.GetName()+"_bucket"] = true
		}
	}
	return out
}

func TestPrometheusRule(t *testing.T) {
	s := sampleStack()
	s.Spec.Monitoring.PrometheusRule.Labels = map[string]string{"role": "alert-rules"}
	pr, err := AuthServerPrometheusRule(s)
	if err != nil {
		t.Fatal(err)
	}
	checkMonitoringMeta(t, pr, PrometheusRuleGVK.Kind)
	if pr.GetLabels()["role"] != "alert-rules" {
		t.Errorf("user label missing: %v", pr.GetLabels())
	}
	groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	if len(groups) != 1 {
		t.Fatalf("groups = %v", groups)
	}
	rules := groups[0].(map[string]any)["rules"].([]any)
	known := authServerMetricNames(t)
	kubeState := map[string]bool{"kube_cronjob_status_last_schedule_time": true,
		"kube_cronjob_status_last_successful_time": true, "kube_cronjob_status_active": true}
	got := map[string]string{}
	for _, r := range rules {
		rule := r.(map[string]any)
		name, expr := rule["alert"].(string), rule["expr"].(string)
		got[name] = expr
		if sev := rule["labels"].(map[string]any)["severity"]; sev != "critical" && sev != "warning" {
			t.Errorf("%s: severity %v", name, sev)
		}
		names, err := promql.MetricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s reads no metric: %s", name, expr)
		}
		for _, n := range names {
			if !known[n] && !kubeState[n] {
				t.Errorf("%s reads %s, which neither the authserver nor kube-state-metrics exports", name, n)
			}
		}
		// Scoped to this stack: its namespace, and its Service or CronJobs.
		if !strings.Contains(expr, `namespace="`+testNamespace+`"`) {
			t.Errorf("%s is not scoped to the namespace: %s", name, expr)
		}
		if !strings.Contains(expr, `service="demo-authserver"`) && !strings.Contains(expr, `demo-backup-postgres|demo-backup-redis`) &&
			!strings.Contains(expr, `cronjob=~"demo-backup-verify"`) {
			t.Errorf("%s is not scoped to the stack: %s", name, expr)
		}
	}
	for _, want := range []string{"HighErrorRate", "AuthenticationFailures", "LockoutSpike", "BackupFailed", "BackupRestoreFailed"} {
		if got[want] == "" {
			t.Errorf("alert %s missing (have %v)", want, got)
		}
	}
	if !strings.Contains(got["HighErrorRate"], `status_code=~"5.."`) || !strings.Contains(got["AuthenticationFailures"], `kind="LOGIN_FAIL"`) ||
		!strings.Contains(got["LockoutSpike"], `kind="LOCKOUT"`) {
		t.Errorf("alert expressions lost their matchers: %v", got)
	}
}

// A stack name with regexp metacharacters must not widen the backup matcher.
func TestPrometheusRuleQuotesNames(t *testing.T) {
	s := sampleStack()
	s.Name = "a.b"
	pr, err := AuthServerPrometheusRule(s)
	if err != nil {
		t.Fatal(err)
	}
	groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	for _, r := range groups[0].(map[string]any)["rules"].([]any) {
		rule := r.(map[string]any)
		if rule["alert"] == "BackupFailed" && !strings.Contains(rule["expr"].(string), `a\\.b-backup-postgres`) {
			t.Errorf("stack name not escaped: %s", rule["expr"])
		}
		if rule["alert"] == "BackupRestoreFailed" && !strings.Contains(rule["expr"].(string), `a\\.b-backup-verify`) {
			t.Errorf("stack name not escaped: %s", rule["expr"])
		}
	}
}
