package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// The session store on a real 3-primary Redis Cluster, through the client
// app.NewRedis builds from the cluster REDIS_URL form: sessions spread over
// every primary, validate with no database statement, and revocation of
// several sessions at once (keys in different hash slots) is immediate and
// not undone by a racing re-cache. The active count covers the cluster.
func TestSessionsOnRedisCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := testservers.RedisCluster(t, 3)
	rdb, err := app.NewRedis(cl.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("app.NewRedis(cluster URL) built a %T, want *redis.ClusterClient", rdb)
	}
	f := setupWith(t, rdb)

	const n = 24
	toks := make([]string, n)
	infos := make([]session.Info, n)
	for i := range toks {
		toks[i], infos[i] = f.login(t)
	}
	// Every primary holds some sessions (they are not pinned to one slot).
	var mu sync.Mutex
	perNode := map[string]int64{}
	err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		k, err := c.DBSize(ctx).Result()
		mu.Lock()
		perNode[c.Options().Addr] = k
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for addr, k := range perNode {
		if k == 0 {
			t.Errorf("primary %s holds no key: %v", addr, perNode)
		}
	}
	if len(perNode) != 3 {
		t.Errorf("%d primaries, want 3", len(perNode))
	}

	before := f.db.n.Load()
	for i, tok := range toks {
		got, err := f.m.Validate(ctx, tok)
		if err != nil || got.ID != infos[i].ID || got.UserID != f.u.ID {
			t.Fatalf("validate %d on the cluster: %+v %v", i, got, err)
		}
	}
	if d := f.db.n.Load() - before; d != 0 {
		t.Fatalf("%d database statements for %d cached validations on the cluster", d, n)
	}

	// The active count (one sorted set) sees every session.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.m.Run(runCtx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.m.Active() != n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	if f.m.Active() != n {
		t.Fatalf("active sessions %d, want %d", f.m.Active(), n)
	}

	// Revoke half of them in one call, as "log out everywhere" does: their
	// keys are in different hash slots.
	var hashes [][]byte
	for i := 0; i < n/2; i++ {
		if _, err := store.DeleteSession(ctx, f.st.Pool, f.u.ID, infos[i].ID); err != nil {
			t.Fatal(err)
		}
		h, _ := session.HashToken(toks[i])
		hashes = append(hashes, h[:])
	}
	f.m.Forget(ctx, hashes...)
	for i, tok := range toks {
		_, err := f.m.Validate(ctx, tok)
		if i < n/2 && err != session.ErrInvalid {
			t.Fatalf("revoked session %d on the cluster: %v", i, err)
		}
		if i >= n/2 && err != nil {
			t.Fatalf("kept session %d on the cluster: %v", i, err)
		}
	}
	// A validation that read a row just before the revocation re-caches it
	// afterwards: the tombstone refuses, on whichever node holds it.
	for i := 0; i < n/2; i++ {
		f.m.Cache(ctx, toks[i], infos[i])
		if _, err := f.m.Validate(ctx, toks[i]); err != session.ErrInvalid {
			t.Fatalf("revoked session %d re-cached on the cluster: %v", i, err)
		}
	}
	if card, err := cc.ZCard(ctx, "authstack:sessions").Result(); err != nil || card != n/2 {
		t.Fatalf("active set holds %d (%v), want %d", card, err, n/2)
	}
}
