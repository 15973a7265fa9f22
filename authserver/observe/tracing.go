// Package observe sets up what the authserver reports beyond its metrics:
// OpenTelemetry traces exported over OTLP/HTTP and error reports to Sentry
// (docs/monitoring.md). Both are off unless configured, and then cost
// nothing on the request path.
package observe

import (
	"context"
	"fmt"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/leanauth/authstack/authserver/config"
)

// Tracing builds the tracer provider that exports to o.OTLPEndpoint, or
// returns nil when tracing is off. New traces are sampled at
// o.TraceSampleRatio; a caller's sampled traceparent is always followed.
// The exporter's other standard variables (OTEL_EXPORTER_OTLP_HEADERS,
// _TIMEOUT, _COMPRESSION, _CERTIFICATE) are read by the exporter itself.
// Shut the provider down to flush the last spans.
func Tracing(ctx context.Context, o config.Observability, version string) (*sdktrace.TracerProvider, error) {
	if o.OTLPEndpoint == "" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.OTLPEndpoint))
	if err != nil {
		return nil, fmt.Errorf("creating the OTLP trace exporter: %w", err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(o.ServiceName), semconv.ServiceVersion(version))
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(entrySampler{sdktrace.TraceIDRatioBased(o.TraceSampleRatio)})),
	), nil
}

// entrySampler starts traces only at the entry points: a request (server
// span) or an outbox delivery (consumer span). A query or Redis command
// without a parent (the outbox poll every second, the session flusher, the
// sweeper) would otherwise be a trace of its own each time.
type entrySampler struct{ ratio sdktrace.Sampler }

func (s entrySampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Kind != trace.SpanKindServer && p.Kind != trace.SpanKindConsumer {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
	}
	return s.ratio.ShouldSample(p)
}

func (s entrySampler) Description() string { return "EntrySpans{" + s.ratio.Description() + "}" }

// TracePostgres makes every query of pools built from cfg a span. The span
// holds the SQL text, never the arguments (otelpgx leaves them out unless
// asked to), which carry emails, token hashes and password hashes.
func TracePostgres(cfg *pgxpool.Config, tp *sdktrace.TracerProvider) {
	cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(tp),
		otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()))
}

// TraceRedis makes every Redis command a span named by the command, without
// its arguments (keys and values).
func TraceRedis(rdb redis.UniversalClient, tp *sdktrace.TracerProvider) error {
	return redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tp), redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false)) // no runtime.Callers per command
}
