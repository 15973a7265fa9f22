package app

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/metrics"
)

// poolStats reads both connection pools for the /metrics page.
func poolStats(db *pgxpool.Pool, rdb redis.UniversalClient) metrics.Pools {
	d, r := db.Stat(), rdb.PoolStats()
	return metrics.Pools{
		DBAcquired: d.AcquiredConns(), DBIdle: d.IdleConns(), DBConstructing: d.ConstructingConns(), DBMax: d.MaxConns(),
		DBAcquires: d.AcquireCount(), DBEmptyAcquires: d.EmptyAcquireCount(), DBAcquireWaitSeconds: d.EmptyAcquireWaitTime().Seconds(),
		RedisTotal: r.TotalConns, RedisIdle: r.IdleConns, RedisStale: r.StaleConns, RedisTimeouts: r.Timeouts,
	}
}

// redisMemory reads used_memory and maxmemory from INFO memory: of the server,
// or summed over the primaries of a Redis Cluster.
func redisMemory(ctx context.Context, rdb redis.UniversalClient) (used, max float64, err error) {
	var mu sync.Mutex
	add := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		u, m := infoField(info, "used_memory"), infoField(info, "maxmemory")
		mu.Lock()
		used, max = used+u, max+m
		mu.Unlock()
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, add)
	case *redis.Client:
		err = add(ctx, c)
	}
	return used, max, err
}

// infoField is the number of one "name:value" line of an INFO answer (0 when absent).
func infoField(info, name string) float64 {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
