package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// TestObservabilityWiring: spec.observability reaches the authserver pods on a real
// API server. The Sentry DSN Secret is read like every other referenced Secret (its
// absence names the field), its port opens the NetworkPolicy, and the stack settles
// to 10 no-op reconciles without a write.
func TestObservabilityWiring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	createReferencedSecrets(t, ns)
	op := startOperator(t, ns)
	stack := sampleStack(ns, "auth")
	stack.Spec.Observability = authv1alpha1.ObservabilitySpec{
		Tracing:        &authv1alpha1.TracingSpec{Endpoint: "http://otel-collector.observability:4318", SampleRatio: "0.5"},
		ErrorReporting: &authv1alpha1.ErrorReportingSpec{DSNSecretRef: authv1alpha1.SecretKeyRef{Name: "sentry", Key: "dsn"}},
	}
	if err := k8s.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the missing DSN Secret is reported with its field", func() error {
		got := &authv1alpha1.AuthStack{}
		if err := k8s.Get(ctx, key(ns, "auth"), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, authv1alpha1.ConditionAuthServerAvailable)
		if c == nil || c.Reason != authv1alpha1.ReasonSecretNotFound || !strings.Contains(c.Message, "spec.observability.errorReporting.dsnSecretRef") {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	const dsn = "https://sentrykey@sentry.example.com:9443/7"
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sentry", Namespace: ns}, StringData: map[string]string{"dsn": dsn}}); err != nil {
		t.Fatal(err)
	}
	dep := getDeployment(t, ns)
	env := map[string]corev1.EnvVar{}
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	if env["OTEL_EXPORTER_OTLP_ENDPOINT"].Value != "http://otel-collector.observability:4318" || env["OTEL_TRACES_SAMPLER_ARG"].Value != "0.5" {
		t.Errorf("tracing env %+v %+v", env["OTEL_EXPORTER_OTLP_ENDPOINT"], env["OTEL_TRACES_SAMPLER_ARG"])
	}
	if r := env["SENTRY_DSN"].ValueFrom; r == nil || r.SecretKeyRef == nil || r.SecretKeyRef.Name != "sentry" || env["SENTRY_ENVIRONMENT"].Value != "production" {
		t.Errorf("SENTRY_DSN %+v, SENTRY_ENVIRONMENT %q: want a Secret reference, in production", env["SENTRY_DSN"], env["SENTRY_ENVIRONMENT"].Value)
	}
	eventually(t, "the authserver NetworkPolicy lets traces and reports out", func() error {
		np := &networkingv1.NetworkPolicy{}
		if err := k8s.Get(ctx, key(ns, "auth-authserver"), np); err != nil {
			return err
		}
		var ports []int
		for _, r := range np.Spec.Egress {
			for _, p := range r.Ports {
				ports = append(ports, p.Port.IntValue())
			}
		}
		if !slices.Contains(ports, 4318) || !slices.Contains(ports, 9443) {
			return fmt.Errorf("egress ports %v, want 4318 (OTLP) and 9443 (the DSN's)", ports)
		}
		return nil
	})

	settle(t, op, ns)
	before := op.writes.count()
	for range 10 {
		reconcileNow(t, op, ns)
	}
	if d := op.writes.count() - before; d != 0 {
		t.Errorf("10 no-op reconciles of a stack with spec.observability sent %d writes", d)
	}
}
