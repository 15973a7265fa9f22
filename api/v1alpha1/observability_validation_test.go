package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// spec.observability rules. The cases join rejectCases (validation_test.go) so that
// TestRejects runs them and TestEveryRuleIsCovered counts them.

const msgOTLPEndpoint = "observability.tracing.endpoint must be the http(s) URL of an OTLP/HTTP receiver, such as http://otel-collector.observability:4318"

func init() {
	const t, ft = "observability.tracing.", "spec.observability.tracing."
	const e, fe = "observability.errorReporting.", "spec.observability.errorReporting."
	const a, fa = "observability.accessLog.", "spec.observability.accessLog."
	okTracing := map[string]any{t + "endpoint": "http://otel-collector.observability:4318"}
	okSentry := map[string]any{e + "dsnSecretRef.name": "sentry", e + "dsnSecretRef.key": "dsn"}
	with := func(base map[string]any, path string, v any) map[string]any {
		out := map[string]any{path: v}
		for k, bv := range base {
			if k != path {
				out[k] = bv
			}
		}
		return out
	}
	cases := []rejectCase{
		{name: "tracing endpoint missing", set: map[string]any{t + "sampleRatio": "0.5"}, field: ft + "endpoint", kind: kindRequired},
		{name: "tracing endpoint too long", set: with(okTracing, t+"endpoint", "http://"+strings.Repeat("a", 2048)+".com"), field: ft + "endpoint", kind: kindMaxLength},
		{name: "errorReporting dsnSecretRef missing", set: map[string]any{e + "environment": "staging"}, field: fe + "dsnSecretRef", kind: kindRequired},
		{name: "errorReporting environment with a slash", set: with(okSentry, e+"environment", "prod/eu"), field: fe + "environment", kind: kindPattern},
		{name: "errorReporting environment too long", set: with(okSentry, e+"environment", strings.Repeat("a", 65)), field: fe + "environment", kind: kindMaxLength},
	}
	for _, bad := range []string{"otel-collector:4318", "grpc://otel-collector:4317", "http://", "not a url"} {
		cases = append(cases, rejectCase{name: "tracing endpoint " + bad, set: with(okTracing, t+"endpoint", bad),
			field: ft + "endpoint", kind: kindCEL, msg: msgOTLPEndpoint})
	}
	for _, bad := range []string{"1.5", "-0.1", "10%", "0.1234567", "2", ".5", ""} {
		cases = append(cases,
			rejectCase{name: "tracing sampleRatio " + bad, set: with(okTracing, t+"sampleRatio", bad), field: ft + "sampleRatio", kind: kindPattern},
			rejectCase{name: "accessLog hotPathSample " + bad, set: map[string]any{a + "hotPathSample": bad}, field: fa + "hotPathSample", kind: kindPattern})
	}
	// Both Secret references are SecretKeyRefs: their name/key rules, at each use.
	for _, ref := range []struct {
		base        map[string]any
		path, field string
	}{
		{okTracing, t + "headersSecretRef.", ft + "headersSecretRef."},
		{map[string]any{}, e + "dsnSecretRef.", fe + "dsnSecretRef."},
	} {
		for _, c := range []struct {
			sub, kind string
			v         any
		}{
			{"name", kindMinLength, ""}, {"name", kindMaxLength, strings.Repeat("a", 254)}, {"name", kindPattern, "Bad_Name"},
			{"key", kindMinLength, ""}, {"key", kindMaxLength, strings.Repeat("a", 254)}, {"key", kindPattern, "bad key"},
		} {
			set := with(ref.base, ref.path+"name", "s")
			set[ref.path+"key"] = "k"
			set[ref.path+c.sub] = c.v
			cases = append(cases, rejectCase{name: ref.field + c.sub + " " + c.kind, set: set, field: ref.field + c.sub, kind: c.kind})
		}
	}
	rejectCases = append(rejectCases, cases...)
}

// TestObservabilityDefaults: the defaults of spec.observability are those of defaults.go,
// and what a user sets is kept.
func TestObservabilityDefaults(t *testing.T) {
	get := func(spec map[string]any) authv1alpha1.ObservabilitySpec {
		t.Helper()
		u := authStack("observability", spec)
		if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
			t.Fatalf("rejected: %v", err)
		}
		var got authv1alpha1.AuthStack
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
			t.Fatalf("converting the answer: %v", err)
		}
		return got.Spec.Observability
	}
	o := get(minimalSpec())
	if o.Tracing != nil || o.ErrorReporting != nil {
		t.Errorf("tracing %+v, errorReporting %+v defaulted; want both off", o.Tracing, o.ErrorReporting)
	}
	if e := o.AccessLog.Enabled; e == nil || *e != authv1alpha1.DefaultAccessLogEnabled {
		t.Errorf("accessLog.enabled = %v, want %v", e, authv1alpha1.DefaultAccessLogEnabled)
	}
	if o.AccessLog.HotPathSample != authv1alpha1.DefaultAccessLogHotPathSample {
		t.Errorf("accessLog.hotPathSample = %q, want %q", o.AccessLog.HotPathSample, authv1alpha1.DefaultAccessLogHotPathSample)
	}

	spec := minimalSpec()
	setPath(spec, "observability.tracing.endpoint", "https://otlp.example.com")
	setPath(spec, "observability.errorReporting.dsnSecretRef", map[string]any{"name": "sentry", "key": "dsn"})
	o = get(spec)
	if o.Tracing == nil || o.Tracing.SampleRatio != authv1alpha1.DefaultTraceSampleRatio {
		t.Errorf("tracing = %+v, want sampleRatio %q", o.Tracing, authv1alpha1.DefaultTraceSampleRatio)
	}
	if o.ErrorReporting == nil || o.ErrorReporting.Environment != authv1alpha1.DefaultSentryEnvironment {
		t.Errorf("errorReporting = %+v, want environment %q", o.ErrorReporting, authv1alpha1.DefaultSentryEnvironment)
	}

	spec = minimalSpec()
	for p, v := range map[string]any{"observability.tracing.endpoint": "http://[::1]:4318/otlp", "observability.tracing.sampleRatio": "1",
		"observability.accessLog.enabled": false, "observability.accessLog.hotPathSample": "0", "observability.errorReporting.environment": "staging-eu_1",
		"observability.errorReporting.dsnSecretRef": map[string]any{"name": "sentry", "key": "dsn"}} {
		setPath(spec, p, v)
	}
	o = get(spec)
	if o.Tracing.SampleRatio != "1" || *o.AccessLog.Enabled || o.AccessLog.HotPathSample != "0" || o.ErrorReporting.Environment != "staging-eu_1" {
		t.Errorf("user values not kept: %+v %+v %+v", o.Tracing, o.AccessLog, o.ErrorReporting)
	}
}
