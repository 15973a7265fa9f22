package controllers

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The operator's own traces (docs/monitoring.md, "Operator traces"): with the
// standard OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) set on the manager, every
// reconcile is one span exported over OTLP/HTTP, carrying the stack, the units it
// applied, what it wrote, a blocker and the error. Attributes hold names of fields and
// objects only: the operator reads Secret values but never puts one in a span.

// Span attributes of a reconcile.
const (
	attrNamespace = "k8s.namespace.name"
	attrStack     = "authstack.name"
	attrUnits     = "authstack.units"   // the spec fields of the units applied
	attrWrites    = "authstack.writes"  // Kind/name of each object written
	attrFailed    = "authstack.failed"  // the spec fields of the units the API server refused
	attrBlocked   = "authstack.blocked" // the field and reason that stopped rendering
)

// TracingFromEnv builds the tracer provider of the operator from the OTEL_* variables
// read by get, or returns nil when no endpoint is set (or OTEL_SDK_DISABLED=true).
// The exporter reads its other standard variables (headers, timeout, certificate)
// and the SDK the sampler (OTEL_TRACES_SAMPLER, default parent-based always-on)
// from the process environment. Shut it down to flush the last spans.
func TracingFromEnv(ctx context.Context, get func(string) string, version string) (*sdktrace.TracerProvider, error) {
	endpoint := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" && get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
		endpoint = strings.TrimRight(get("OTEL_EXPORTER_OTLP_ENDPOINT"), "/") + "/v1/traces"
	}
	if endpoint == "" || strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return nil, nil
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: must be the http(s) URL of an OTLP/HTTP receiver, got %q", endpoint)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("creating the OTLP trace exporter: %w", err)
	}
	name := get("OTEL_SERVICE_NAME")
	if name == "" {
		name = "authstack-operator"
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name), semconv.ServiceVersion(version))),
	), nil
}

// startReconcileSpan starts the span of one reconcile (a no-op span when tracing is off).
func (r *AuthStackReconciler) startReconcileSpan(ctx context.Context, req ctrl.Request) (context.Context, trace.Span) {
	if r.Tracing == nil {
		return ctx, trace.SpanFromContext(ctx) // the context's span is a no-op one
	}
	ctx, span := r.Tracing.Tracer("github.com/leanauth/authstack/controllers").Start(ctx, "AuthStack reconcile",
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String(attrNamespace, req.Namespace), attribute.String(attrStack, req.Name)))
	return context.WithValue(ctx, writesKey{}, &[]string{}), span
}

// writesKey holds the objects one traced reconcile wrote.
type writesKey struct{}

// endReconcileSpan records the reconcile's outcome on its span and ends it.
func endReconcileSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		// API server errors name objects and fields, never Secret values.
		span.SetStatus(codes.Error, redactedApplyError(err))
		span.RecordError(err)
	}
	span.End()
}

// traceUnits adds the units applied and those that failed to the reconcile's span.
func traceUnits(ctx context.Context, units []unit, failures []failure) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	fields := make([]string, 0, len(units))
	for _, u := range units {
		fields = append(fields, u.field)
	}
	failed := make([]string, 0, len(failures))
	for _, f := range failures {
		failed = append(failed, f.field)
	}
	span.SetAttributes(attribute.StringSlice(attrUnits, fields), attribute.StringSlice(attrFailed, failed))
}

// traceWrite notes an object the reconcile wrote.
func traceWrite(ctx context.Context, obj client.Object) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		kind := obj.GetObjectKind().GroupVersionKind().Kind
		if kind == "" {
			kind = fmt.Sprintf("%T", obj)
		}
		if w, ok := ctx.Value(writesKey{}).(*[]string); ok {
			*w = append(*w, kind+"/"+obj.GetName())
			span.SetAttributes(attribute.StringSlice(attrWrites, *w))
		}
	}
}

// traceBlocker notes why the stack was not rendered.
func traceBlocker(ctx context.Context, b *blocker) {
	if span := trace.SpanFromContext(ctx); b != nil && span.IsRecording() {
		span.SetAttributes(attribute.String(attrBlocked, b.field+": "+b.reason))
	}
}
