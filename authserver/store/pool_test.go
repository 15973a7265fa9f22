package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// A pooled connection the server closed while it sat idle in the pool (a pgbouncer pod
// stopping in a rollout, an administrator ending the session) is not handed to the next
// query, even when it was used less than a second ago (pgxpool pings only connections
// idle for longer): the query gets a fresh connection and succeeds.
func TestPoolSkipsConnectionsTheServerClosed(t *testing.T) {
	t.Parallel()
	url := testservers.Postgres(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := store.PoolConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	st, err := store.OpenConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for i := range 3 {
		var pid int32
		if err := st.Pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		var ended bool
		if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1, 5000)", pid).Scan(&ended); err != nil || !ended {
			t.Fatalf("ending backend %d: %v %v", pid, ended, err)
		}
		var again int32
		if err := st.Pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&again); err != nil {
			t.Fatalf("round %d: the query after the server closed the idle connection failed: %v", i, err)
		}
		if again == pid {
			t.Fatalf("round %d: the same backend %d answered after it was ended", i, pid)
		}
	}
}
