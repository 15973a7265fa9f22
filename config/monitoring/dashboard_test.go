package monitoring

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/leanauth/authstack/authserver/metrics"
	"github.com/leanauth/authstack/internal/promql"
)

// kubeStateMetrics are the only names the dashboard may read that the
// authserver does not export: backups are Jobs, seen through kube-state-metrics.
var kubeStateMetrics = map[string]bool{
	"kube_job_status_failed":                   true,
	"kube_cronjob_status_last_successful_time": true,
}

// authServerMetrics returns every series name the authserver's registry
// exposes, histograms with their _bucket, _sum and _count series.
func authServerMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New(func() float64 { return 0 }, func() float64 { return 0 })
	// Vectors only appear once they have a child.
	m.AuthEvent("LOGIN_SUCCESS")
	m.EmailEvent("QUEUED")
	m.Route("GET", "/health").Observe(200, 0.001)
	// As app.Serve wires them (authserver/httpapi/flow_test.go checks a running server has them).
	m.WatchPools(func() metrics.Pools { return metrics.Pools{} })
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	for _, must := range []string{"http_requests_total", "http_request_duration_seconds_bucket", "auth_events_total", "redis_sessions_active"} {
		if !names[must] {
			t.Fatalf("authserver registry lacks %s: the test's setup is wrong", must)
		}
	}
	return names
}

type dashboard struct {
	Title  string  `json:"title"`
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func TestDashboardQueriesUseRealMetrics(t *testing.T) {
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard needs a uid, a title and panels: %+v", d)
	}
	known := authServerMetrics(t)
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names, err := promql.MetricNames(tg.Expr)
			if err != nil {
				t.Errorf("panel %q %s: %v", p.Title, tg.RefID, err)
				continue
			}
			if len(names) == 0 {
				t.Errorf("panel %q %s reads no metric: %s", p.Title, tg.RefID, tg.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !known[n] && !kubeStateMetrics[n] {
					t.Errorf("panel %q %s reads %s, which the authserver does not export", p.Title, tg.RefID, n)
				}
			}
		}
	}
	// The panels docs/monitoring.md lists read these metrics.
	for _, n := range []string{"auth_events_total", "redis_sessions_active", "http_requests_total",
		"email_events_total", "http_request_duration_seconds_bucket", "kube_job_status_failed",
		"db_pool_connections", "db_pool_max_connections", "db_pool_acquires_total", "db_pool_empty_acquires_total",
		"db_pool_acquire_wait_seconds_total", "redis_memory_used_bytes", "redis_memory_max_bytes",
		"redis_pool_connections", "redis_pool_timeouts_total", "redis_up"} {
		if !used[n] {
			t.Errorf("no panel reads %s", n)
		}
	}
	for _, want := range []string{`kind="LOGIN_SUCCESS"`, `kind="LOGIN_FAIL"`, `kind="LOCKOUT"`, `kind="SEND_FAILED"`, `kind="REJECTED"`, `kind="EXPIRED"`,
		`status_code="429"`, `status_code=~"5.."`, "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,",
		`sum by (route) (rate(http_requests_total{namespace=~"$namespace", service=~"$service", status_code=~"5.."}[5m])) / sum by (route)`} {
		if !strings.Contains(string(data), strings.ReplaceAll(want, `"`, `\"`)) {
			t.Errorf("no query contains %s", want)
		}
	}
	var all []string
	for n := range used {
		all = append(all, n)
	}
	sort.Strings(all)
	t.Logf("metrics read: %v", all)
}
