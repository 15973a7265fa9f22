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
//
// The three are set together when the span ends: given at the start, the SDK
// copies them into the start configuration, then into the span, and copies
// the span's list again to add the status (three allocations per request
// instead of one; docs/benchmarks.md, "Session 7"). The sampler
// (observe.Tracing) decides by the span's kind and parent, not its
// attributes.
type requestTracer struct {
	tracer trace.Tracer
	name   string
	route  attribute.KeyValue
	method attribute.KeyValue // unset (invalid) if the route takes any method
}

var (
	traceContext = propagation.TraceContext{}
	serverSpan   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
)

func (s *Server) requestTracer(method, pattern string) *requestTracer {
	if s.tracing == nil {
		return nil
	}
	t := &requestTracer{tracer: s.tracing.Tracer("github.com/leanauth/authstack/authserver/httpapi"), name: pattern,
		route: semconv.HTTPRoute(pattern)}
	if method != "ANY" {
		t.name = method + " " + pattern
		t.method = semconv.HTTPRequestMethodKey.String(method)
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
	ctx, span := t.tracer.Start(ctx, t.name, serverSpan...)
	return r.WithContext(ctx), span
}

// end records the method, route and status and ends the span; a 5xx marks it
// failed (a 4xx is the client's, as the HTTP semantic conventions say for
// servers).
func (t *requestTracer) end(span trace.Span, r *http.Request, status int) {
	m := t.method
	if !m.Valid() {
		m = semconv.HTTPRequestMethodKey.String(standardMethod(r.Method))
	}
	span.SetAttributes(m, t.route, semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}
