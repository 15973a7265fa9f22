// Package store holds the PostgreSQL access of the authserver: the
// connection pool, the embedded migrations and every query.
//
// All queries run with pgx's QueryExecModeExec: the extended protocol with
// unnamed statements, one round trip, no server-side prepared statements, so
// they work through pgbouncer in transaction pooling mode (including 1.18,
// which has no prepared-statement support).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// DBTX is what the queries need: a pool, a connection or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store is the PostgreSQL side of the authserver.
type Store struct {
	Pool *pgxpool.Pool
}

// PoolConfig parses a database URL into a pool configuration that is safe
// behind pgbouncer in transaction mode.
func PoolConfig(databaseURL string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's parse errors can echo the URL, which holds the password.
		return nil, errors.New("parsing database URL: invalid connection string")
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.ConnConfig.StatementCacheCapacity = 0
	cfg.ConnConfig.DescriptionCacheCapacity = 0
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	cfg.ShouldPing = shouldPing // peer.go
	if cfg.MaxConnIdleTime == 0 || cfg.MaxConnIdleTime > 5*time.Minute {
		cfg.MaxConnIdleTime = 5 * time.Minute
	}
	return cfg, nil
}

// Open connects a pool to databaseURL. It does not wait for the database to
// answer: readiness is reported by Ping.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	cfg, err := PoolConfig(databaseURL)
	if err != nil {
		return nil, err
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig connects a pool with cfg (from PoolConfig).
func OpenConfig(ctx context.Context, cfg *pgxpool.Config) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating database pool: %w", err)
	}
	return &Store{Pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.Pool.Close() }

// Ping checks that the database answers a query (through the pooler, if any).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.Pool.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise. fn gets the transaction as a DBTX, so callers need not
// import the driver.
func (s *Store) InTx(ctx context.Context, fn func(q DBTX) error) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error { return fn(tx) })
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
