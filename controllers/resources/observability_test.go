package resources

import (
	"bytes"
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/config"
)

var (
	testSentryRef  = authv1alpha1.SecretKeyRef{Name: "demo-sentry", Key: "dsn"}
	testHeadersRef = authv1alpha1.SecretKeyRef{Name: "demo-otlp", Key: "headers"}
	testSentryDSN  = []byte("https://sentrySECRETkey@sentry.example.com:8443/42")
)

func init() {
	testSecretValues[testSentryRef] = testSentryDSN
	testSecretValues[testHeadersRef] = []byte("authorization=Bearer otlpSECRETtoken")
	stackVariants = append(stackVariants, struct {
		name  string
		stack func() *authv1alpha1.AuthStack
	}{"observability", func() *authv1alpha1.AuthStack { return withObservability(sampleStack()) }})
}

// withObservability turns on every part of spec.observability, away from its defaults.
func withObservability(s *authv1alpha1.AuthStack) *authv1alpha1.AuthStack {
	s.Spec.Observability = authv1alpha1.ObservabilitySpec{
		Tracing: &authv1alpha1.TracingSpec{Endpoint: "http://otel-collector.observability:4318", SampleRatio: "0.25",
			HeadersSecretRef: ptr.To(testHeadersRef)},
		ErrorReporting: &authv1alpha1.ErrorReportingSpec{DSNSecretRef: testSentryRef, Environment: "staging"},
		AccessLog:      authv1alpha1.AccessLogSpec{Enabled: ptr.To(false), HotPathSample: "0.5"},
	}
	return s
}

// TestObservabilityReachesTheAuthServer: what spec.observability says is what the
// authserver's own loader reads from the rendered pod, with the secrets taken from
// their Secrets by the kubelet.
func TestObservabilityReachesTheAuthServer(t *testing.T) {
	s := withObservability(sampleStack())
	values := map[authv1alpha1.SecretKeyRef][]byte{}
	for k, v := range testSecretValues {
		values[k] = v
	}
	values[PepperRef(s)] = testSecretValues[authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}]
	spec := renderDeployment(s).Spec.Template.Spec
	get, read := podEnv(t, spec, container(t, spec, ComponentAuthServer), values)
	cfg, err := config.Load(get, read)
	if err != nil {
		t.Fatalf("the authserver rejects the rendered configuration: %v", err)
	}
	o := cfg.Observability
	if o.OTLPEndpoint != "http://otel-collector.observability:4318/v1/traces" || o.TraceSampleRatio != 0.25 {
		t.Errorf("traces go to %q at %v, want the spec's receiver at 0.25", o.OTLPEndpoint, o.TraceSampleRatio)
	}
	if o.SentryDSN != string(testSentryDSN) || o.SentryEnvironment != "staging" {
		t.Errorf("Sentry %q in %q, want the Secret's DSN in staging", o.SentryDSN, o.SentryEnvironment)
	}
	if o.AccessLog || o.AccessLogHotSample != 0.5 {
		t.Errorf("access log %v sampled at %v, want off and 0.5", o.AccessLog, o.AccessLogHotSample)
	}
	if h, _ := get("OTEL_EXPORTER_OTLP_HEADERS"); h != string(values[testHeadersRef]) {
		t.Errorf("OTEL_EXPORTER_OTLP_HEADERS = %q, want the Secret's", h)
	}

	// Migrations and backups report their failures to the same project, as
	// their own loader reads it.
	backupPod := BackupCronJob(withBackup(s), BackupKindPostgres, DefaultBackupSources(s, sampleInputs(s))).Spec.JobTemplate.Spec.Template.Spec
	for name, c := range map[string]struct {
		pod corev1.PodSpec
		c   corev1.Container
	}{
		"migrate":         {spec, container(t, spec, MigrateContainerName)},
		"backup postgres": {backupPod, backupPod.Containers[0]},
	} {
		values[testBackupKey] = []byte("key")
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			values[authv1alpha1.SecretKeyRef{Name: "demo-s3", Key: k}] = []byte("x")
		}
		get, read := podEnv(t, c.pod, c.c, values)
		o, err := config.LoadObservability(get, read)
		if err != nil || o.SentryDSN != string(testSentryDSN) || o.SentryEnvironment != "staging" {
			t.Errorf("%s reports to %q in %q (%v), want the Secret's DSN in staging", name, o.SentryDSN, o.SentryEnvironment, err)
		}
	}

	// No secret value is ever written into an object: the kubelet reads them.
	for _, obj := range []any{renderDeployment(s), BackupCronJob(withBackup(s), BackupKindPostgres, DefaultBackupSources(s, sampleInputs(s)))} {
		b := mustJSON(t, obj)
		for _, secret := range testSecretValues {
			if bytes.Contains(b, secret) {
				t.Errorf("%T holds the secret %q", obj, secret)
			}
		}
	}

	uses := ReferencedSecrets(s)
	for _, want := range []SecretUse{{"spec.observability.errorReporting.dsnSecretRef", testSentryRef}, {"spec.observability.tracing.headersSecretRef", testHeadersRef}} {
		if !slices.Contains(uses, want) {
			t.Errorf("ReferencedSecrets lacks %v (a changed DSN would not roll the pods, a missing one not be reported)", want)
		}
	}
}

// TestObservabilityOffRendersNothing: a stack that never set spec.observability (or
// set only its defaults) gets none of its variables, so upgrading the operator
// rolls no pod, and the authserver runs with its own defaults, which are the CRD's.
func TestObservabilityOffRendersNothing(t *testing.T) {
	s := sampleStack()
	for _, o := range []authv1alpha1.ObservabilitySpec{{}, {AccessLog: authv1alpha1.AccessLogSpec{
		Enabled: ptr.To(authv1alpha1.DefaultAccessLogEnabled), HotPathSample: authv1alpha1.DefaultAccessLogHotPathSample}}} {
		s.Spec.Observability = o
		dep := renderDeployment(s)
		for _, c := range append(dep.Spec.Template.Spec.InitContainers, dep.Spec.Template.Spec.Containers...) {
			for _, e := range c.Env {
				if slices.Contains([]string{"ACCESS_LOG", "ACCESS_LOG_HOT_SAMPLE", "SENTRY_DSN", "SENTRY_ENVIRONMENT"}, e.Name) || len(e.Name) > 5 && e.Name[:5] == "OTEL_" {
					t.Errorf("%+v: container %s has %s", o, c.Name, e.Name)
				}
			}
		}
		if got := ReferencedSecrets(s); len(got) != len(ReferencedSecrets(sampleStack())) {
			t.Errorf("observability off adds Secrets %v", got)
		}
	}
	values := map[authv1alpha1.SecretKeyRef][]byte{}
	for k, v := range testSecretValues {
		values[k] = v
	}
	values[PepperRef(s)] = testSecretValues[authv1alpha1.SecretKeyRef{Name: "demo-pepper", Key: "pepper"}]
	spec := renderDeployment(s).Spec.Template.Spec
	get, read := podEnv(t, spec, container(t, spec, ComponentAuthServer), values)
	cfg, err := config.Load(get, read)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.ParseFloat(authv1alpha1.DefaultAccessLogHotPathSample, 64)
	if o := cfg.Observability; o.AccessLog != authv1alpha1.DefaultAccessLogEnabled || o.AccessLogHotSample != want || o.OTLPEndpoint != "" || o.SentryDSN != "" {
		t.Errorf("the authserver's defaults %+v are not the CRD's (access log %v, hot path %v, traces and reports off)",
			o, authv1alpha1.DefaultAccessLogEnabled, want)
	}
}

// TestObservabilityEgress: the authserver's NetworkPolicy lets its traces and error
// reports out, on the receiver's and the DSN's ports, and nothing more.
func TestObservabilityEgress(t *testing.T) {
	ports := func(s *authv1alpha1.AuthStack, p NetworkPolicyPorts) []int {
		var out []int
		for _, r := range NetworkPolicies(s, p)[0].Spec.Egress {
			if len(r.To) == 0 {
				for _, pp := range r.Ports {
					out = append(out, pp.Port.IntValue())
				}
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	s := sampleStack()
	base := ports(s, NetworkPolicyPorts{})
	s = withObservability(s)
	got := ports(s, NetworkPolicyPorts{ErrorReporting: URLPort(string(testSentryDSN))})
	for _, p := range []int{4318, 8443} {
		if !slices.Contains(got, p) || slices.Contains(base, p) {
			t.Errorf("egress ports %v (without observability %v): want %d only with it", got, base, p)
		}
	}
	s.Spec.Observability.Tracing.Endpoint = "https://otlp.example.com"
	if got := ports(s, NetworkPolicyPorts{}); !slices.Contains(got, 443) {
		t.Errorf("egress ports %v: an https receiver without a port and a DSN not read yet need 443", got)
	}
	for raw, want := range map[string]int{"http://c:4318": 4318, "http://c": 80, "https://k@o1.ingest.sentry.io/2": 443, "::bad": 443} {
		if got := URLPort(raw); got != want {
			t.Errorf("URLPort(%q) = %d, want %d", raw, got, want)
		}
	}
}
