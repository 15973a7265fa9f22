package backup

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// BenchmarkPostgresBackupRestore backs up and restores a database of
// 100 000 users with 2 sessions each (seeded with SQL, the schema from the
// store's migrations) through a real S3 server, and reports sizes, speed and
// the Go heap's peak during the backup (the pipeline holds one 16 MiB part).
// Run: go test ./authserver/backup -run '^$' -bench PostgresBackupRestore -benchtime 1x
func BenchmarkPostgresBackupRestore(b *testing.B) {
	const users = 100_000
	pg := testservers.Postgres(b)
	src := pg.NewDatabase(b)
	ctx := context.Background()
	if _, err := store.Migrate(ctx, src); err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, src)
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO users (email, password_hash, email_verified_at)
			SELECT 'user' || i || '@example.com', '$argon2id$v=19$m=19456,t=2,p=1$' || md5(i::text) || '$' || md5((i*7)::text), CASE WHEN i %% 3 = 0 THEN now() END
			FROM generate_series(1, %d) i`, users),
		`INSERT INTO sessions (token_hash, user_id, expires_at, ip, user_agent)
			SELECT sha256((u.id::text || j)::bytea), u.id, now() + interval '1 day', '192.0.2.1', 'Mozilla/5.0 (bench)'
			FROM users u, generate_series(1, 2) j`,
		`INSERT INTO audit_logs (user_id, kind, ip, details) SELECT id, 'signup', '192.0.2.1', '{"n":1}' FROM users`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	conn.Close(ctx)
	s3, key := newStorage(b)
	e := s3Env(s3, "backups", "bench", key).with("DATABASE_URL", src)
	cfg := loadBackup(b, e, KindPostgres)
	rcfg := loadRestore(b, e)

	b.ResetTimer()
	var backupTime, restoreTime time.Duration
	var res Result
	var peak atomic.Uint64
	for i := 0; i < b.N; i++ {
		stop := make(chan struct{})
		go func() { // sample the heap while the backup runs
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		start := time.Now()
		res, err = Backup(ctx, cfg, KindPostgres)
		backupTime += time.Since(start)
		close(stop)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		dst := pg.NewDatabase(b)
		b.StartTimer()
		start = time.Now()
		if _, err := RestorePostgres(ctx, rcfg, RestoreOptions{Object: res.Object, TargetURL: dst}); err != nil {
			b.Fatal(err)
		}
		restoreTime += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(backupTime.Seconds()/n, "backup-s")
	b.ReportMetric(restoreTime.Seconds()/n, "restore-s")
	b.ReportMetric(float64(res.RawSize)/1e6, "dump-MB")
	b.ReportMetric(float64(res.Size)/1e6, "stored-MB")
	b.ReportMetric(float64(res.RawSize)/1e6/(backupTime.Seconds()/n), "dump-MB/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}
