package promql

import (
	"reflect"
	"testing"
)

func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`rate(http_requests_total{status_code=~"5.."}[5m]) / rate(http_requests_total[5m]) > 0.05`, []string{"http_requests_total"}},
		{`histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{namespace=~"$namespace"}[$__rate_interval])))`, []string{"http_request_duration_seconds_bucket"}},
		{`time() - max without (pod) (kube_cronjob_status_last_successful_time{cronjob=~"a-(b|c)"}) > 1e3`, []string{"kube_cronjob_status_last_successful_time"}},
		{`a_total{x="}"} * on (job) group_left (version) b_info and ignoring (y) c offset 5m`, []string{"a_total", "b_info", "c"}},
		{`sum(up{job='x\'y'}) by (job)`, []string{"up"}},
		{`max_over_time(foo[1h:5m]) or vector(0)`, []string{"foo"}},
	}
	for _, c := range cases {
		got, err := MetricNames(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.expr, got, c.want)
		}
	}
}

func TestMetricNamesMalformed(t *testing.T) {
	for _, expr := range []string{`foo{a="b}`, `foo{a="b"`, `rate(foo[5m)`, `sum by (a (foo)`} {
		if got, err := MetricNames(expr); err == nil {
			t.Errorf("%s: want an error, got %v", expr, got)
		}
	}
}
