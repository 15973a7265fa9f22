package session

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// FlushCache deletes every session cache entry, tombstone and the active set
// from Redis (on every master of a Redis Cluster) and returns how many keys it
// deleted. After a restore, nothing cached before it may vouch for a session:
// the next validation reads PostgreSQL. Keys are deleted one by one (each is in
// its own hash slot); other keys (rate limits, lockouts) stay.
func FlushCache(ctx context.Context, rdb redis.UniversalClient) (int, error) {
	var n atomic.Int64 // ForEachMaster runs concurrently
	flush := func(ctx context.Context, c *redis.Client) error {
		if err := c.Del(ctx, activeKey).Err(); err != nil {
			return err
		}
		for _, pattern := range []string{keyPrefix + "*", legacyTomb + "*"} {
			iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				if err := c.Del(ctx, iter.Val()).Err(); err != nil {
					return err
				}
				n.Add(1)
			}
			if err := iter.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, flush)
	case *redis.Client:
		err = flush(ctx, c)
	default:
		return 0, fmt.Errorf("flushing the session cache: unsupported Redis client %T", rdb)
	}
	if err != nil {
		return int(n.Load()), fmt.Errorf("flushing the session cache: %w", err)
	}
	return int(n.Load()), nil
}
