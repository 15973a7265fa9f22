package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMetricsNamesAndLabels(t *testing.T) {
	m := New(func() float64 { return 7 }, func() float64 { return 1 })
	r := m.Route("GET", "/auth/sessions/{id}")
	r.Observe(200, 0.001)
	r.Observe(200, 0.002)
	r.Observe(404, 0.001)
	r.Observe(999, 0.001) // out of the cache range: still counted
	m.AuthEvent("LOGIN_SUCCESS")
	m.EmailEvent("VERIFY_SENT")
	m.WatchHashing(func() (int64, time.Duration, time.Duration) { return 3, 90 * time.Millisecond, 60 * time.Millisecond })
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	out := string(b)
	for _, want := range []string{
		`http_requests_total{method="GET",route="/auth/sessions/{id}",status_code="200"} 2`,
		`http_requests_total{method="GET",route="/auth/sessions/{id}",status_code="404"} 1`,
		`http_requests_total{method="GET",route="/auth/sessions/{id}",status_code="999"} 1`,
		`http_request_duration_seconds_count{method="GET",route="/auth/sessions/{id}",status_code="200"} 2`,
		`auth_events_total{kind="LOGIN_SUCCESS"} 1`,
		`email_events_total{kind="VERIFY_SENT"} 1`,
		`redis_sessions_active 7`,
		`password_hashes_in_flight 1`,
		`password_hashes_total 3`, `password_hash_seconds_total 0.09`, `password_hash_cpu_seconds_total 0.06`,
		`go_goroutines`, `process_resident_memory_bytes`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
}
