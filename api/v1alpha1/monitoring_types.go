package v1alpha1

// MonitoringSpec turns on the Prometheus Operator objects of the authserver: a
// ServiceMonitor scraping its metrics port and a PrometheusRule with its alerts.
// They are created only when the cluster serves the monitoring.coreos.com CRDs;
// without them the stack works the same, and Ready does not depend on them.
type MonitoringSpec struct {
	// Enabled creates the ServiceMonitor and the PrometheusRule.
	// +optional
	// +kubebuilder:default=false
	Enabled *bool `json:"enabled,omitempty"`

	// ServiceMonitor adds labels to the ServiceMonitor, for example the one your
	// Prometheus' serviceMonitorSelector matches (release: kube-prometheus-stack).
	// +optional
	ServiceMonitor MonitoringObjectSpec `json:"serviceMonitor,omitempty"`

	// PrometheusRule adds labels to the PrometheusRule, for example the one your
	// Prometheus' ruleSelector matches.
	// +optional
	PrometheusRule MonitoringObjectSpec `json:"prometheusRule,omitempty"`
}

// MonitoringObjectSpec customises one monitoring object.
type MonitoringObjectSpec struct {
	// Labels are added to the object's labels (the operator's own labels win).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}
