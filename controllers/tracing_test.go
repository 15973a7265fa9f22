package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leanauth/authstack/internal/testservers"
)

// TestReconcileTracesInJaeger: with OTEL_EXPORTER_OTLP_ENDPOINT, each reconcile is a
// span in a real Jaeger, queried back through its API: the stack's namespace and name,
// the units applied, the objects written, and a refused apply as the span's error.
// No Secret value the operator read is in any span.
func TestReconcileTracesInJaeger(t *testing.T) {
	t.Parallel()
	j := testservers.Jaeger(t)
	service := "authstack-operator-test"
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": j.OTLPEndpoint() + "/", "OTEL_SERVICE_NAME": service}
	tp, err := TracingFromEnv(context.Background(), func(k string) string { return env[k] }, "v0.0.0-test")
	if err != nil || tp == nil {
		t.Fatalf("TracingFromEnv: %v, %v", tp, err)
	}
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ctx := context.Background()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	// A Deployment of the authserver's name with another (immutable) selector: the
	// API server refuses the operator's, so every reconcile fails on spec.authServer.
	labels := map[string]string{"app": "squatter"}
	squatter := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "auth-authserver", Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}},
	}}
	if err := k8s.Create(ctx, squatter); err != nil {
		t.Fatal(err)
	}
	op := startOperator(t, ns, func(r *AuthStackReconciler) { r.Tracing = tp })
	if err := k8s.Create(ctx, sampleStack(ns, "auth")); err != nil {
		t.Fatal(err)
	}

	var raw string
	var found []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatalf("flushing: %v", err)
		}
		var spans []testservers.JaegerSpan
		spans, raw = j.Traces(t, service)
		found = found[:0]
		var ok bool
		for _, s := range spans {
			if s.OperationName != "AuthStack reconcile" {
				continue
			}
			nsTag, _ := s.Tag(attrNamespace)
			name, _ := s.Tag(attrStack)
			units, _ := s.Tag(attrUnits)
			writes, _ := s.Tag(attrWrites)
			failed, _ := s.Tag(attrFailed)
			status, _ := s.Tag("otel.status_code")
			msg, _ := s.Tag("otel.status_description")
			found = append(found, fmt.Sprint(nsTag, name, units, writes, failed, status, msg))
			if nsTag == ns && name == "auth" && strings.Contains(fmt.Sprint(units), "spec.authServer") &&
				strings.Contains(fmt.Sprint(writes), "Service/auth-authserver") && strings.Contains(fmt.Sprint(failed), "spec.authServer") &&
				status == "ERROR" && strings.Contains(fmt.Sprint(msg), "auth-authserver") {
				ok = true
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconcile span with the stack, its units, its writes and the refused Deployment; spans:\n%s", strings.Join(found, "\n"))
		}
		time.Sleep(300 * time.Millisecond)
	}
	op.shutdown()

	pepper := getPepper(t, ns)
	secrets := []string{"s3cret", "r3dis", "smtp-pass", string(pepper.Data["pepper"])}
	for _, s := range secrets {
		if s != "" && strings.Contains(raw, s) {
			t.Errorf("a span holds the secret %q", s)
		}
	}
	if !slices.ContainsFunc(found, func(s string) bool { return strings.Contains(s, ns) }) {
		t.Error("no span names the namespace")
	}
}

// TestTracingOffWithoutEndpoint: no endpoint, no provider; a bad one is refused.
func TestTracingOffWithoutEndpoint(t *testing.T) {
	for _, env := range []map[string]string{{}, {"OTEL_SERVICE_NAME": "x"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}} {
		tp, err := TracingFromEnv(context.Background(), func(k string) string { return env[k] }, "v")
		if tp != nil || err != nil {
			t.Errorf("%v: %v, %v; want no tracing", env, tp, err)
		}
	}
	tp, err := TracingFromEnv(context.Background(), func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "otel-collector:4318"}[k]
	}, "v")
	if tp != nil || err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") {
		t.Errorf("an endpoint without a scheme: %v, %v; want an error naming the variable", tp, err)
	}
}
