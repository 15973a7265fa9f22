package testservers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/leanauth/authstack/internal/servers"
)

// JaegerScript builds the trace receiver (Jaeger) Jaeger starts.
const JaegerScript = "hack/jaeger.sh"

// JaegerServer is a Jaeger (v2, all in one, in-memory storage) owned by one
// test: an OTLP/HTTP receiver and the query API.
type JaegerServer struct {
	dir             string
	otlpPort, query int
	proc            *servers.Process
}

// jaegerConfig is the all-in-one configuration of cmd/jaeger reduced to
// what the tests use, every listener on a loopback port of its own.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

// Jaeger starts a Jaeger on free loopback ports; stopped at t.Cleanup.
func Jaeger(t testing.TB) *JaegerServer {
	t.Helper()
	bin, err := servers.CachedBinary("JAEGER_BIN", "jaeger", JaegerScript)
	if err != nil {
		fatal(t, "Jaeger", err)
	}
	dir, err := os.MkdirTemp("", "authstack-jaeger-*")
	if err != nil {
		fatal(t, "Jaeger", err)
	}
	j := &JaegerServer{dir: dir}
	t.Cleanup(func() {
		if j.proc != nil {
			j.proc.Stop()
		}
		os.RemoveAll(dir)
	})
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = j.start(bin, FreePort(t), FreePort(t), FreePort(t)); lastErr == nil {
			return j
		}
	}
	fatal(t, "Jaeger", lastErr)
	return nil
}

func (j *JaegerServer) start(bin string, otlp, query, grpc int) error {
	j.otlpPort, j.query = otlp, query
	conf := filepath.Join(j.dir, "config.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(jaegerConfig, query, grpc, otlp)), 0o600); err != nil {
		return err
	}
	p, err := servers.StartProcess("jaeger", bin, []string{"--config", conf}, nil, filepath.Join(j.dir, "jaeger.log"))
	if err != nil {
		return err
	}
	j.proc = p
	client := &http.Client{Timeout: time.Second}
	return p.WaitReady(60*time.Second, func() error {
		for _, u := range []string{j.QueryURL() + "/api/services", j.OTLPEndpoint() + "/v1/traces"} {
			resp, err := client.Get(u)
			if err != nil {
				return err
			}
			resp.Body.Close()
		}
		return nil
	})
}

// OTLPEndpoint is the OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT).
func (j *JaegerServer) OTLPEndpoint() string { return "http://127.0.0.1:" + strconv.Itoa(j.otlpPort) }

// QueryURL is the base URL of the query API and UI.
func (j *JaegerServer) QueryURL() string { return "http://127.0.0.1:" + strconv.Itoa(j.query) }

// JaegerSpan is one span as the query API returns it.
type JaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

// Tag returns the value of the span's tag key, and whether it has it.
func (s JaegerSpan) Tag(key string) (any, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

// Trace returns the spans of a trace (empty when Jaeger has none) and the
// raw JSON of the answer, for grepping.
func (j *JaegerServer) Trace(t testing.TB, traceID string) ([]JaegerSpan, string) {
	t.Helper()
	return j.get(t, "/api/traces/"+traceID)
}

// Traces returns every span of the service's traces and the raw JSON.
func (j *JaegerServer) Traces(t testing.TB, service string) ([]JaegerSpan, string) {
	t.Helper()
	return j.get(t, "/api/traces?limit=1000&lookback=1h&service="+service)
}

func (j *JaegerServer) get(t testing.TB, path string) ([]JaegerSpan, string) {
	t.Helper()
	resp, err := http.Get(j.QueryURL() + path)
	if err != nil {
		t.Fatalf("jaeger query %s: %v", path, err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if resp.StatusCode == http.StatusNotFound {
		return nil, ""
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || resp.StatusCode != 200 {
		t.Fatalf("jaeger query %s: status %d, %v", path, resp.StatusCode, err)
	}
	var body struct {
		Data []struct {
			Spans []JaegerSpan `json:"spans"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("jaeger query %s: %v", path, err)
	}
	var spans []JaegerSpan
	for _, d := range body.Data {
		spans = append(spans, d.Spans...)
	}
	return spans, string(raw)
}
