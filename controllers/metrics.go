package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Reasons of authstack_reconcile_errors_total: which step of Reconcile failed.
const (
	errReasonStackRead    = "stack_read"    // reading the AuthStack itself
	errReasonSecretRead   = "secret_read"   // observe: referenced Secrets, the pepper
	errReasonApplyFailed  = "apply_failed"  // applying or deleting children
	errReasonChildrenRead = "children_read" // observe: the children, for rendering and status
	errReasonStatusWrite  = "status_write"  // writing status
	errReasonMonitoring   = "monitoring"    // ServiceMonitor / PrometheusRule
)

// reconcileErrors counts failed reconciles by the step that failed. It is served
// with controller-runtime's own metrics (controller_runtime_reconcile_total and
// the rest) on the manager's metrics endpoint.
var reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "authstack_reconcile_errors_total",
	Help: "AuthStack reconciles that failed, by the step that failed (stack_read, secret_read, apply_failed, children_read, status_write, monitoring).",
}, []string{"reason"})

func init() {
	metrics.Registry.MustRegister(reconcileErrors)
	// Every reason is exported from the start, at 0, so rate() and alerts work
	// before the first failure.
	for _, r := range []string{errReasonStackRead, errReasonSecretRead, errReasonApplyFailed,
		errReasonChildrenRead, errReasonStatusWrite, errReasonMonitoring} {
		reconcileErrors.WithLabelValues(r)
	}
}

// countError counts err (when not nil) under reason, and returns it.
func countError(reason string, err error) error {
	if err != nil {
		reconcileErrors.WithLabelValues(reason).Inc()
	}
	return err
}
