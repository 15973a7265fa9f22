// Package metrics defines the Prometheus metrics of the authserver and the
// handler that serves them on METRICS_ADDR.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors; its methods are safe for concurrent use.
type Metrics struct {
	Registry       *prometheus.Registry
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	authEvents     *prometheus.CounterVec
	emailEvents    *prometheus.CounterVec
	passkeys       *prometheus.CounterVec
	secondFactor   *prometheus.CounterVec
	sessionsActive prometheus.GaugeFunc
	hashesInFlight prometheus.GaugeFunc
	redisUp        prometheus.Gauge
	redisMemUsed   prometheus.Gauge
	redisMemMax    prometheus.Gauge
}

// New registers every metric in a fresh registry, with the Go runtime and
// process collectors. activeSessions and hashesInFlight are read at scrape time.
func New(activeSessions, hashesInFlight func() float64) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "status_code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request duration by method, route pattern and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route", "status_code"}),
		authEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auth_events_total", Help: "Authentication events by kind (the audit log kinds).",
		}, []string{"kind"}),
		emailEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "email_events_total", Help: "Email events by kind (QUEUED, VERIFY_SENT, RESET_SENT, ACCOUNT_EXISTS_SENT, SEND_RETRY, SEND_FAILED, REJECTED, EXPIRED).",
		}, []string{"kind"}),
		passkeys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passkey_ceremonies_total", Help: "Finished passkey (WebAuthn) ceremonies by ceremony (register, login, second_factor) and outcome (ok, fail).",
		}, []string{"ceremony", "outcome"}),
		secondFactor: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auth_second_factor_total", Help: "Second-factor checks (login second step and re-authentication) by method (totp, recovery_code, passkey) and result (ok, invalid).",
		}, []string{"method", "result"}),
	}
	m.sessionsActive = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "redis_sessions_active", Help: "Unexpired sessions cached in Redis (shared by all replicas).",
	}, activeSessions)
	m.hashesInFlight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "password_hashes_in_flight", Help: "Password hashes running now in this process.",
	}, hashesInFlight)
	m.redisUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "redis_up", Help: "1 when this replica's last Redis check answered, 0 while it runs degraded (sessions from PostgreSQL, rate limits open).",
	})
	m.redisMemUsed = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "redis_memory_used_bytes", Help: "Redis used_memory (INFO memory) at the last check, summed over a cluster's primaries.",
	})
	m.redisMemMax = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "redis_memory_max_bytes", Help: "Redis maxmemory at the last check, summed over a cluster's primaries (0: no limit).",
	})
	r.MustRegister(m.requests, m.duration, m.authEvents, m.emailEvents, m.passkeys, m.secondFactor, m.sessionsActive, m.hashesInFlight, m.redisUp, m.redisMemUsed, m.redisMemMax,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// AuthEvent counts one auth event.
func (m *Metrics) AuthEvent(kind string) { m.authEvents.WithLabelValues(kind).Inc() }

// SetRedisUp records whether Redis answered the last check.
func (m *Metrics) SetRedisUp(up bool) {
	if up {
		m.redisUp.Set(1)
	} else {
		m.redisUp.Set(0)
	}
}

// PasskeyCeremony counts one finished passkey ceremony.
func (m *Metrics) PasskeyCeremony(ceremony, outcome string) {
	m.passkeys.WithLabelValues(ceremony, outcome).Inc()
}

// SecondFactor counts one second-factor check.
func (m *Metrics) SecondFactor(method, result string) {
	m.secondFactor.WithLabelValues(method, result).Inc()
}

// EmailEvent counts one email event.
func (m *Metrics) EmailEvent(kind string) { m.emailEvents.WithLabelValues(kind).Inc() }

// Route returns the observer of one route pattern, with its label values
// resolved once per status code.
func (m *Metrics) Route(method, route string) *RouteMetrics {
	return &RouteMetrics{m: m, method: method, route: route}
}

// RouteMetrics records requests of one method and route.
type RouteMetrics struct {
	m             *Metrics
	method, route string
	cache         [600]atomic.Pointer[pair] // by status code
}

type pair struct {
	c prometheus.Counter
	h prometheus.Observer
}

// Observe records one request.
func (r *RouteMetrics) Observe(status int, seconds float64) {
	var p *pair
	if status >= 100 && status < 600 {
		p = r.cache[status].Load()
	}
	if p == nil {
		code := strconv.Itoa(status)
		p = &pair{c: r.m.requests.WithLabelValues(r.method, r.route, code), h: r.m.duration.WithLabelValues(r.method, r.route, code)}
		if status >= 100 && status < 600 {
			r.cache[status].Store(p)
		}
	}
	p.c.Inc()
	p.h.Observe(seconds)
}
