package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ConnectWait is how long a one-shot command (migrate, peppers, db-role, a backup,
// a restore, a restore drill) keeps trying to reach its database before it reports
// the last attempt's error. A Job's or init container's pod can start before the
// network lets it through: NetworkPolicy engines such as kube-router add a new
// pod's address to the policies a moment after the pod starts and reject until
// then ("connection refused"), and each Job attempt is a new pod with a new
// address; the database may also still be starting. Tests shorten it.
var ConnectWait = time.Minute

// connectRetryEvery is the pause between two attempts of Connect.
const connectRetryEvery = time.Second

// Connect opens one connection with cfg (from pgx.ParseConfig), trying again every
// second for up to ConnectWait while the server cannot be reached (a dial or DNS
// error, a timeout) or answers that it cannot take connections yet (SQLSTATE 57P03:
// starting up, shutting down). Any other error (a wrong password, a missing
// database) returns at once. Each attempt is bounded by cfg.ConnectTimeout, 10 s
// when unset, so a peer that drops packets costs no more than one that refuses.
// Every retry is logged to log (nil: not logged) without the URL. The error is
// pgx's, wrapped with how long it tried when it retried.
func Connect(ctx context.Context, cfg *pgx.ConnConfig, log *slog.Logger) (*pgx.Conn, error) {
	cfg = cfg.Copy()
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil || !notReachableYet(err) || ctx.Err() != nil {
			return conn, err
		}
		if time.Since(start)+connectRetryEvery > ConnectWait {
			return nil, fmt.Errorf("after trying for %s: %w", time.Since(start).Round(time.Second), err)
		}
		if log != nil {
			log.Warn("database not reachable yet, trying again", "attempt", attempt, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("after trying for %s: %w", time.Since(start).Round(time.Second), err)
		case <-time.After(connectRetryEvery):
		}
	}
}

// notReachableYet tells whether a connection error may go away by itself.
func notReachableYet(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P03" // cannot_connect_now
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// ConnectURL is Connect for a database URL, in the query mode every query of this
// package uses (QueryExecModeExec: safe behind pgbouncer). A URL that does not parse
// gets an error that does not quote it (pgx's would, password included).
func ConnectURL(ctx context.Context, url string, log *slog.Logger) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("parsing the database URL: invalid connection string")
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	return Connect(ctx, cfg, log)
}
