package metrics

import "github.com/prometheus/client_golang/prometheus"

// Pools is a snapshot of the connection pools (pgxpool.Stat, go-redis PoolStats),
// read at scrape time.
type Pools struct {
	DBAcquired, DBIdle, DBConstructing, DBMax int32
	DBAcquires, DBEmptyAcquires               int64   // counters: every acquire, those that had to wait
	DBAcquireWaitSeconds                      float64 // counter: time spent waiting for a connection
	RedisTotal, RedisIdle, RedisStale         uint32
	RedisTimeouts                             uint32 // counter: waits for a connection that timed out
}

var (
	descDBConns       = prometheus.NewDesc("db_pool_connections", "PostgreSQL pool connections of this process by state (acquired, idle, constructing).", []string{"state"}, nil)
	descDBMax         = prometheus.NewDesc("db_pool_max_connections", "Largest size of this process's PostgreSQL pool.", nil, nil)
	descDBAcquires    = prometheus.NewDesc("db_pool_acquires_total", "Connections acquired from the PostgreSQL pool.", nil, nil)
	descDBEmpty       = prometheus.NewDesc("db_pool_empty_acquires_total", "Acquires that waited because the PostgreSQL pool had no idle connection.", nil, nil)
	descDBWait        = prometheus.NewDesc("db_pool_acquire_wait_seconds_total", "Time spent waiting for a PostgreSQL pool connection.", nil, nil)
	descRedisConns    = prometheus.NewDesc("redis_pool_connections", "Redis client connections of this process by state (total, idle, stale: closed since the start).", []string{"state"}, nil)
	descRedisTimeouts = prometheus.NewDesc("redis_pool_timeouts_total", "Waits for a Redis pool connection that timed out.", nil, nil)
)

// pools is the collector of WatchPools.
type pools struct{ read func() Pools }

func (p pools) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDBConns, descDBMax, descDBAcquires, descDBEmpty, descDBWait, descRedisConns, descRedisTimeouts} {
		ch <- d
	}
}

func (p pools) Collect(ch chan<- prometheus.Metric) {
	s := p.read()
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(descDBConns, g, float64(s.DBAcquired), "acquired")
	ch <- prometheus.MustNewConstMetric(descDBConns, g, float64(s.DBIdle), "idle")
	ch <- prometheus.MustNewConstMetric(descDBConns, g, float64(s.DBConstructing), "constructing")
	ch <- prometheus.MustNewConstMetric(descDBMax, g, float64(s.DBMax))
	ch <- prometheus.MustNewConstMetric(descDBAcquires, c, float64(s.DBAcquires))
	ch <- prometheus.MustNewConstMetric(descDBEmpty, c, float64(s.DBEmptyAcquires))
	ch <- prometheus.MustNewConstMetric(descDBWait, c, s.DBAcquireWaitSeconds)
	ch <- prometheus.MustNewConstMetric(descRedisConns, g, float64(s.RedisTotal), "total")
	ch <- prometheus.MustNewConstMetric(descRedisConns, g, float64(s.RedisIdle), "idle")
	ch <- prometheus.MustNewConstMetric(descRedisConns, g, float64(s.RedisStale), "stale")
	ch <- prometheus.MustNewConstMetric(descRedisTimeouts, c, float64(s.RedisTimeouts))
}

// WatchPools exports the connection pools, read from read at each scrape.
func (m *Metrics) WatchPools(read func() Pools) { m.Registry.MustRegister(pools{read}) }

// SetRedisMemory records the Redis server's used_memory and maxmemory (bytes,
// summed over the primaries of a cluster; maxmemory 0: no limit).
func (m *Metrics) SetRedisMemory(used, max float64) {
	m.redisMemUsed.Set(used)
	m.redisMemMax.Set(max)
}
