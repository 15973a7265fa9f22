package observe_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/observe"
	"github.com/leanauth/authstack/internal/testservers"
)

// BenchmarkSessionSpans: the two spans of a traced session check (the
// request and its Redis GET, with the attributes they carry) through the
// provider of Tracing, exported to a real Jaeger: the SDK's and the
// exporter's share of the tracing overhead without the request itself
// (docs/benchmarks.md, "Tracing overhead"). cpu-ns/op is this process's CPU
// time per pair, export included, which other load on the machine moves less
// than ns/op.
func BenchmarkSessionSpans(b *testing.B) {
	tp, err := observe.Tracing(context.Background(), config.Observability{
		OTLPEndpoint: testservers.Jaeger(b).OTLPEndpoint() + "/v1/traces", TraceSampleRatio: 1, ServiceName: "bench"}, "v0")
	if err != nil {
		b.Fatal(err)
	}
	req, rds := tp.Tracer("req"), tp.Tracer("redis")
	reqOpts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.route", "/auth/session"), attribute.String("http.request.method", "GET"))}
	rdsOpts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "redis"), attribute.String("server.address", "127.0.0.1"),
			attribute.Int("server.port", 6379), attribute.String("db.connection_string", "redis://127.0.0.1:6379"))}
	status := attribute.Int("http.response.status_code", 200)
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ctx, s := req.Start(context.Background(), "GET /auth/session", reqOpts...)
		_, r := rds.Start(ctx, "get", rdsOpts...)
		r.End()
		s.SetAttributes(status)
		s.End()
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
	if err := tp.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
