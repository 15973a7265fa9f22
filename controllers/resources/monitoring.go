package resources

import (
	"fmt"
	"regexp"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// The Prometheus Operator kinds. They are built as unstructured objects: the
// operator does not import their Go types, and the cluster may not serve them.
var (
	ServiceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}
	PrometheusRuleGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}
)

// Monitoring settings.
const (
	// MetricsScrapeInterval is how often Prometheus scrapes the authserver.
	MetricsScrapeInterval = "30s"
	// HighErrorRateThreshold is the share of 5xx responses that fires HighErrorRate.
	HighErrorRateThreshold = 0.05
	// AuthenticationFailuresThreshold is the failed logins per second that fire
	// AuthenticationFailures.
	AuthenticationFailuresThreshold = 100
	// LockoutSpikeThreshold is the number of account lockouts in 15 minutes that
	// fires LockoutSpike.
	LockoutSpikeThreshold = 20
)

// MonitoringEnabled says whether the stack asks for the monitoring objects.
func MonitoringEnabled(stack *authv1alpha1.AuthStack) bool {
	return ptr.Deref(stack.Spec.Monitoring.Enabled, authv1alpha1.DefaultMonitoringEnabled)
}

// monitoringMeta is the metadata of a monitoring object: the user's labels,
// then ours (ours win), and the controller reference.
func monitoringMeta(stack *authv1alpha1.AuthStack, gvk schema.GroupVersionKind, extra map[string]string) (*unstructured.Unstructured, error) {
	meta := objectMeta(stack, AuthServerName(stack), ComponentAuthServer)
	meta.Labels = merged(extra, meta.Labels)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&meta)
	if err != nil {
		return nil, fmt.Errorf("converting the metadata of %s %s: %w", gvk.Kind, meta.Name, err)
	}
	delete(m, "creationTimestamp")
	u := &unstructured.Unstructured{Object: map[string]any{"metadata": m}}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// AuthServerServiceMonitor renders the ServiceMonitor that scrapes the metrics
// port of the authserver Service.
func AuthServerServiceMonitor(stack *authv1alpha1.AuthStack) (*unstructured.Unstructured, error) {
	u, err := monitoringMeta(stack, ServiceMonitorGVK, stack.Spec.Monitoring.ServiceMonitor.Labels)
	if err != nil {
		return nil, err
	}
	u.Object["spec"] = map[string]any{
		"selector":          map[string]any{"matchLabels": stringMap(SelectorLabels(stack, ComponentAuthServer))},
		"namespaceSelector": map[string]any{"matchNames": []any{stack.Namespace}},
		"endpoints": []any{map[string]any{
			"port":     PortNameMetrics,
			"path":     "/metrics",
			"interval": MetricsScrapeInterval,
		}},
	}
	return u, nil
}

// AuthServerPrometheusRule renders the alerts of one stack: HighErrorRate and
// AuthenticationFailures, LockoutSpike, BackupFailed and BackupRestoreFailed (docs/monitoring.md).
// Every expression is scoped to this stack's Service (the "service" and
// "namespace" labels the ServiceMonitor's targets get) or its backup CronJobs.
func AuthServerPrometheusRule(stack *authv1alpha1.AuthStack) (*unstructured.Unstructured, error) {
	u, err := monitoringMeta(stack, PrometheusRuleGVK, stack.Spec.Monitoring.PrometheusRule.Labels)
	if err != nil {
		return nil, err
	}
	u.Object["spec"] = map[string]any{
		"groups": []any{map[string]any{
			"name":  "authstack." + stack.Namespace + "." + stack.Name,
			"rules": alertRules(stack),
		}},
	}
	return u, nil
}

func alertRules(stack *authv1alpha1.AuthStack) []any {
	sel := fmt.Sprintf(`namespace=%q, service=%q`, stack.Namespace, AuthServerName(stack))
	// cronJobFailed: the newest scheduled run of the CronJobs named (a regexp)
	// finished without succeeding, and none runs now (kube-state-metrics).
	cronJobFailed := func(names string) string {
		cronjobs := fmt.Sprintf(`namespace=%q, cronjob=~%q`, stack.Namespace, names)
		lastSchedule := "max by (cronjob) (kube_cronjob_status_last_schedule_time{" + cronjobs + "})"
		lastSuccess := "max by (cronjob) (kube_cronjob_status_last_successful_time{" + cronjobs + "})"
		idle := "(max by (cronjob) (kube_cronjob_status_active{" + cronjobs + "}) == 0)"
		return "((" + lastSchedule + " > " + lastSuccess + ") or (" + lastSchedule + " unless " + lastSuccess + ")) and on (cronjob) " + idle
	}
	where := fmt.Sprintf("AuthStack %s/%s", stack.Namespace, stack.Name)
	rule := func(name, expr, forDur, severity, summary, description string) map[string]any {
		return map[string]any{
			"alert":  name,
			"expr":   expr,
			"for":    forDur,
			"labels": map[string]any{"severity": severity, "authstack": stack.Name},
			"annotations": map[string]any{
				"summary":     summary,
				"description": where + ": " + description,
			},
		}
	}
	return []any{
		rule("HighErrorRate",
			fmt.Sprintf(`sum(rate(http_requests_total{%s, status_code=~"5.."}[5m])) / sum(rate(http_requests_total{%s}[5m])) > %g`, sel, sel, HighErrorRateThreshold),
			"5m", "critical", "High error rate detected",
			fmt.Sprintf("more than %g%% of the authserver's responses are 5xx; check its logs and the database and Redis.", HighErrorRateThreshold*100)),
		rule("AuthenticationFailures",
			fmt.Sprintf(`sum(rate(auth_events_total{%s, kind="LOGIN_FAIL"}[5m])) > %d`, sel, AuthenticationFailuresThreshold),
			"2m", "warning", "High number of authentication failures",
			fmt.Sprintf("more than %d failed logins per second: possibly credential stuffing.", AuthenticationFailuresThreshold)),
		rule("LockoutSpike",
			fmt.Sprintf(`sum(increase(auth_events_total{%s, kind="LOCKOUT"}[15m])) > %d`, sel, LockoutSpikeThreshold),
			"0m", "warning", "Many accounts locked out",
			fmt.Sprintf("more than %d accounts were locked in 15 minutes: a password-guessing attack, or a client retrying a bad password.", LockoutSpikeThreshold)),
		rule("BackupFailed",
			cronJobFailed(regexp.QuoteMeta(BackupCronJobName(stack, BackupKindPostgres))+"|"+regexp.QuoteMeta(BackupCronJobName(stack, BackupKindRedis))),
			"10m", "critical", "Backup failed",
			"the newest scheduled backup run finished without succeeding (needs kube-state-metrics); see the BackupsHealthy condition: kubectl describe authstack "+stack.Name+" -n "+stack.Namespace+"."),
		// The drill exits non-zero on every failed check, so its Job fails.
		rule("BackupRestoreFailed",
			cronJobFailed(regexp.QuoteMeta(DrillCronJobName(stack))),
			"10m", "critical", "Restore drill failed",
			"the newest restore drill could not restore the newest backup, or a check on the restored data failed (needs kube-state-metrics); the RestoreVerified condition says why: kubectl describe authstack "+stack.Name+" -n "+stack.Namespace+"."),
	}
}

// stringMap converts labels to the map type unstructured objects hold.
func stringMap(in map[string]string) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
