package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descHashes   = prometheus.NewDesc("password_hashes_total", "Password hash computations (argon2id) run by this process: hashes of new passwords and verifications.", nil, nil)
	descHashCPU  = prometheus.NewDesc("password_hash_cpu_seconds_total", "CPU time of those computations (per-thread clocks: what the hashes cost, whatever else runs on the node).", nil, nil)
	descHashWall = prometheus.NewDesc("password_hash_seconds_total", "Wall time of those computations; above their CPU time, their threads waited for a CPU (a CPU limit throttling the pod, or other load).", nil, nil)
)

// hashing is the collector of WatchHashing.
type hashing struct {
	read func() (n int64, wall, cpu time.Duration)
}

func (h hashing) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHashes
	ch <- descHashCPU
	ch <- descHashWall
}

func (h hashing) Collect(ch chan<- prometheus.Metric) {
	n, wall, cpu := h.read()
	ch <- prometheus.MustNewConstMetric(descHashes, prometheus.CounterValue, float64(n))
	ch <- prometheus.MustNewConstMetric(descHashCPU, prometheus.CounterValue, cpu.Seconds())
	ch <- prometheus.MustNewConstMetric(descHashWall, prometheus.CounterValue, wall.Seconds())
}

// WatchHashing exports the password hashing work, read from read (as
// password.Hasher.Work reports it) at each scrape.
func (m *Metrics) WatchHashing(read func() (n int64, wall, cpu time.Duration)) {
	m.Registry.MustRegister(hashing{read})
}
