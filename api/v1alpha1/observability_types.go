package v1alpha1

// ObservabilitySpec wires the authserver's traces, error reports and access log
// (docs/monitoring.md). Traces and error reports are off unless set; the access log is on.
type ObservabilitySpec struct {
	// Tracing exports OpenTelemetry traces of the authserver over OTLP/HTTP.
	// +optional
	Tracing *TracingSpec `json:"tracing,omitempty"`

	// ErrorReporting sends unexpected errors and recovered panics of the authserver,
	// its migrations and its backup Jobs to Sentry, scrubbed of secrets and emails.
	// +optional
	ErrorReporting *ErrorReportingSpec `json:"errorReporting,omitempty"`

	// AccessLog writes one JSON line per request to the authserver's log.
	// +optional
	// +kubebuilder:default={}
	AccessLog AccessLogSpec `json:"accessLog,omitempty"`
}

// TracingSpec is where the authserver's traces go and how many are kept.
type TracingSpec struct {
	// Endpoint is the base URL of an OTLP/HTTP receiver (an OpenTelemetry Collector,
	// Jaeger, Tempo), for example http://otel-collector.observability:4318; the
	// authserver adds /v1/traces. http:// sends in clear text, https:// checks the
	// receiver's certificate.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="observability.tracing.endpoint must be the http(s) URL of an OTLP/HTTP receiver, such as http://otel-collector.observability:4318"
	Endpoint string `json:"endpoint"`

	// SampleRatio is the share of new traces recorded, a decimal from 0 to 1. A
	// request whose traceparent says sampled is always recorded.
	// +optional
	// +kubebuilder:default="0.1"
	// +kubebuilder:validation:Pattern=`^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$`
	SampleRatio string `json:"sampleRatio,omitempty"`

	// HeadersSecretRef names the Secret key holding the exporter's headers
	// (OTEL_EXPORTER_OTLP_HEADERS: key=value pairs separated by commas, for example
	// authorization=Bearer ...), for a receiver that wants credentials.
	// +optional
	HeadersSecretRef *SecretKeyRef `json:"headersSecretRef,omitempty"`
}

// ErrorReportingSpec is the Sentry project the reports go to.
type ErrorReportingSpec struct {
	// DSNSecretRef names the Secret key holding the Sentry DSN
	// (https://<key>@o0.ingest.sentry.io/<project>). The DSN carries the project's key,
	// so the AuthStack only names it. The release reported is the authserver's version.
	DSNSecretRef SecretKeyRef `json:"dsnSecretRef"`

	// Environment tags every report, for example production or staging.
	// +optional
	// +kubebuilder:default=production
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+$`
	Environment string `json:"environment,omitempty"`
}

// AccessLogSpec switches the access log and samples its hot path.
type AccessLogSpec struct {
	// Enabled writes the access log.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// HotPathSample is the share of GET /auth/session and /auth/check requests that
	// get a line, a decimal from 0 to 1 (their 5xx answers always do).
	// +optional
	// +kubebuilder:default="0.01"
	// +kubebuilder:validation:Pattern=`^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$`
	HotPathSample string `json:"hotPathSample,omitempty"`
}
