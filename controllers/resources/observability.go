package resources

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// observabilityEnv is the authserver container's share of spec.observability: the
// OTLP trace export, error reporting and the access log. The access log variables
// appear only when they differ from the authserver's defaults, so a stack that never
// set them keeps its pods when the operator is upgraded.
func observabilityEnv(stack *authv1alpha1.AuthStack) []corev1.EnvVar {
	o := stack.Spec.Observability
	var env []corev1.EnvVar
	if t := o.Tracing; t != nil {
		env = append(env,
			corev1.EnvVar{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: t.Endpoint},
			corev1.EnvVar{Name: "OTEL_TRACES_SAMPLER_ARG", Value: cmp.Or(t.SampleRatio, authv1alpha1.DefaultTraceSampleRatio)})
		if r := t.HeadersSecretRef; r != nil {
			env = append(env, secretEnv("OTEL_EXPORTER_OTLP_HEADERS", *r))
		}
	}
	if !ptr.Deref(o.AccessLog.Enabled, authv1alpha1.DefaultAccessLogEnabled) {
		env = append(env, corev1.EnvVar{Name: "ACCESS_LOG", Value: "false"})
	}
	if s := o.AccessLog.HotPathSample; s != "" && s != authv1alpha1.DefaultAccessLogHotPathSample {
		env = append(env, corev1.EnvVar{Name: "ACCESS_LOG_HOT_SAMPLE", Value: s})
	}
	return append(env, sentryEnv(stack)...)
}

// sentryEnv makes an authserver-image container report its unexpected failures to
// Sentry: the server, its migrations and the backup Jobs. The DSN is read from its
// Secret by the kubelet, never written into the pod spec.
func sentryEnv(stack *authv1alpha1.AuthStack) []corev1.EnvVar {
	r := stack.Spec.Observability.ErrorReporting
	if r == nil {
		return nil
	}
	return []corev1.EnvVar{
		secretEnv("SENTRY_DSN", r.DSNSecretRef),
		{Name: "SENTRY_ENVIRONMENT", Value: cmp.Or(r.Environment, authv1alpha1.DefaultSentryEnvironment)},
	}
}

// observabilitySecrets are the Secret keys spec.observability names.
func observabilitySecrets(stack *authv1alpha1.AuthStack) []SecretUse {
	var uses []SecretUse
	o := stack.Spec.Observability
	if t := o.Tracing; t != nil && t.HeadersSecretRef != nil {
		uses = append(uses, SecretUse{Field: "spec.observability.tracing.headersSecretRef", Ref: *t.HeadersSecretRef})
	}
	if r := o.ErrorReporting; r != nil {
		uses = append(uses, SecretUse{Field: "spec.observability.errorReporting.dsnSecretRef", Ref: r.DSNSecretRef})
	}
	return uses
}

// observabilityPorts are the ports the authserver pods send traces and error reports
// to, sorted and without repeats: the OTLP endpoint's, and the Sentry DSN's (read by
// the reconciler from its Secret; 443 before it is read).
func observabilityPorts(stack *authv1alpha1.AuthStack, ports NetworkPolicyPorts) []int {
	var out []int
	o := stack.Spec.Observability
	if o.Tracing != nil {
		out = append(out, URLPort(o.Tracing.Endpoint))
	}
	if o.ErrorReporting != nil {
		out = append(out, cmp.Or(ports.ErrorReporting, 443))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// URLPort is the port an http(s) URL reaches: its own, else the scheme's (443 for
// https and anything unreadable, 80 for http).
func URLPort(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 443
	}
	if p, err := strconv.Atoi(u.Port()); err == nil && p > 0 && p < 65536 {
		return p
	}
	if u.Scheme == "http" {
		return 80
	}
	return 443
}
