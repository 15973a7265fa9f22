package controllers

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

func TestReconcileErrorsCounter(t *testing.T) {
	// Served by the manager: registered in controller-runtime's registry, every
	// reason present before any failure.
	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, f := range fams {
		if f.GetName() != "authstack_reconcile_errors_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					reasons[l.GetValue()] = true
				}
			}
		}
	}
	for _, r := range []string{errReasonStackRead, errReasonSecretRead, errReasonApplyFailed,
		errReasonChildrenRead, errReasonStatusWrite, errReasonMonitoring} {
		if !reasons[r] {
			t.Errorf("authstack_reconcile_errors_total{reason=%q} not exported by metrics.Registry (have %v)", r, reasons)
		}
	}

	apply := reconcileErrors.WithLabelValues(errReasonApplyFailed)
	status := reconcileErrors.WithLabelValues(errReasonStatusWrite)
	a0, s0 := value(t, apply), value(t, status)
	if err := countError(errReasonApplyFailed, nil); err != nil {
		t.Fatalf("countError(nil) = %v", err)
	}
	if got := value(t, apply); got != a0 {
		t.Errorf("a nil error was counted: %v -> %v", a0, got)
	}
	boom := errors.New("boom")
	if err := countError(errReasonApplyFailed, boom); !errors.Is(err, boom) {
		t.Errorf("countError did not return its error: %v", err)
	}
	if got := value(t, apply); got != a0+1 {
		t.Errorf("apply_failed = %v, want %v", got, a0+1)
	}
	if got := value(t, status); got != s0 {
		t.Errorf("another reason moved: status_write %v -> %v", s0, got)
	}
}

// value reads a counter's current value.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
