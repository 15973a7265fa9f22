package httpapi

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// requestTracer makes each request of one route a server span named by its
// method and route pattern, continuing a W3C traceparent. It is what otelhttp
// did, inside the wrapper that already times the request and counts its status
// and bytes: otelhttp wrapped the response writer a second time (httpsnoop),
// built its HTTP metrics' attribute sets on every request although no meter
// was set, and put eleven attributes on each span. These spans carry the three
// that say which request it was: method, route and status (docs/benchmarks.md,
// "Tracing overhead"). Never the path or query, which may carry tokens.
type requestTracer struct {
	tracer    trace.Tracer
	name      string
	attrs     []attribute.KeyValue    // method (unless the route takes any) and route
	opts      []trace.SpanStartOption // built once: kind and attrs (nil if the route takes any method)
	anyMethod bool
}

var traceContext = propagation.TraceContext{}

func (s *Server) requestTracer(method, pattern string) *requestTracer {
	if s.tracing == nil {
		return nil
	}
	t := &requestTracer{tracer: s.tracing.Tracer("github.com/leanauth/authstack/authserver/httpapi"), name: pattern,
		attrs: []attribute.KeyValue{semconv.HTTPRoute(pattern)}, anyMethod: method == "ANY"}
	if !t.anyMethod {
		t.name = method + " " + pattern
		t.attrs = append(t.attrs, semconv.HTTPRequestMethodKey.String(method))
		t.opts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(t.attrs...)}
	}
	return t
}

// start begins the span of r; r's context carries it from then on.
func (t *requestTracer) start(r *http.Request) (*http.Request, trace.Span) {
	ctx := r.Context()
	// Most requests carry no traceparent: looking for one through the
	// propagator costs a canonicalised copy of the header name each time.
	if _, ok := r.Header["Traceparent"]; ok {
		ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	opts := t.opts
	if t.anyMethod {
		opts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(t.attrs...),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(standardMethod(r.Method)))}
	}
	ctx, span := t.tracer.Start(ctx, t.name, opts...)
	return r.WithContext(ctx), span
}

// end records the status and ends the span; a 5xx marks it failed (a 4xx is
// the client's, as the HTTP semantic conventions say for servers).
func (t *requestTracer) end(span trace.Span, status int) {
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}
